// What the browser files that drive the demo profile and the client share: one stack per file (its
// own ports, so its own rate-limit counters), a fresh browser context per test, and the steps of a
// flow (sign in, open the popup, decide at TikTok, finish in the popup), axe-core and the phone checks.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, BrowserContextOptions, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, expect, vi } from 'vitest'
import { DEMO_USER } from '../sandbox/app.ts'
import { ROOT, type Stack, startStack } from '../scripts/stack.ts'
import { ARTIFACTS, decideAtTikTok, launchBrowser } from './browser.ts'

export const DESKTOP = { width: 1280, height: 800 }
export const MOBILE = { width: 390, height: 844 }
const AXE_PATH = join(ROOT, 'node_modules/axe-core/axe.min.js')
const AXE_SOURCE = readFileSync(AXE_PATH, 'utf8')
/** `SCREENSHOTS_TO_DOCS=1` also writes the README's few screenshots to docs/. */
const TO_DOCS = process.env.SCREENSHOTS_TO_DOCS === '1'

export type Client = typeof import('../public/oauth/tiktok-connect.js')
type Finding = { id: string; impact: string | null; nodes: number }

export type Demo = {
  stack: Stack
  browser: Browser
  context: BrowserContext
  page: Page
  /** The demo's first product domain, `http://localhost:<worker port>`. */
  primary: string
  /** A context of its own (another language, say), closed with the test's. */
  newContext: (options?: BrowserContextOptions) => Promise<BrowserContext>
}

/**
 * Registers the file's hooks: one stack on `ports` (never `npm run dev`'s), a sandbox reset and a new
 * context at 1280×800 before each test. axe-core's findings go to test-artifacts/axe-<name>.json.
 */
export function useDemo(name: string, ports: { worker: number; sandbox: number }): Demo {
  const demo = {} as Demo
  const extra: BrowserContext[] = []
  demo.newContext = async (options) => {
    const context = await demo.browser.newContext({ viewport: DESKTOP, ...options })
    extra.push(context)
    return context
  }
  beforeAll(async () => {
    demo.stack = await startStack({ workerPort: ports.worker, sandboxPort: ports.sandbox, useDevVars: false, quiet: true, raisedLimits: true })
    demo.primary = demo.stack.vars.ALLOWED_ORIGINS!.split(',')[0]!
    demo.browser = await launchBrowser()
  })
  afterAll(async () => {
    if (Object.keys(axeResults).length) writeFileSync(join(ARTIFACTS, `axe-${name}.json`), `${JSON.stringify(axeResults, null, 2)}\n`)
    await demo.browser?.close()
    await demo.stack?.stop()
  })
  beforeEach(async () => {
    await fetch(`${demo.stack.sandboxOrigin}/__sandbox/reset`, { method: 'POST' })
    demo.context = await demo.browser.newContext({ viewport: DESKTOP })
    demo.page = await demo.context.newPage()
  })
  afterEach(async () => {
    await Promise.all(extra.splice(0).map((c) => c.close()))
    await demo.context.close()
  })
  return demo
}

export const demoRow = async (demo: Demo) => (await demo.stack.sandbox.supabase.row(DEMO_USER.id))!
export const exchangeCalls = (demo: Demo) => demo.stack.sandbox.tiktok.requests.filter((r) => r.path.endsWith('/oauth2/access_token/')).length
export const sandboxPost = (demo: Demo, path: string, body: unknown) =>
  fetch(`${demo.stack.sandboxOrigin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** Signs in on the demo profile; answers when it shows the TikTok section. */
export async function signIn(demo: Demo, on: Page = demo.page, mode = 'auto') {
  await on.goto(`${demo.primary}/profile?mode=${mode}`)
  await on.click('#sign-in-button')
  await on.waitForSelector('body[data-state]:not([data-state="signed-out"])')
}

/** The client module as a product page imports it, on `window.client` (the profile has no CSP). */
export async function loadClient(on: Page) {
  await on.addScriptTag({ type: 'module', content: "import * as client from '/oauth/tiktok-connect.js'; window.client = client" })
  await on.waitForFunction(() => 'client' in window)
}

/** Starts connectTikTok in the page, as a click handler would, and records its events and outcome. */
export async function startClient(on: Page, options: Record<string, unknown> = {}) {
  await loadClient(on)
  await on.evaluate((options) => {
    const w = window as unknown as Record<string, unknown> & { client: Client }
    const { accessToken } = JSON.parse(sessionStorage.getItem('demo_supabase_session')!)
    const events: unknown[] = []
    w.events = events
    w.settled = false
    w.promise = w.client.connectTikTok({ accessToken, onEvent: (e) => events.push(e), ...options })
    w.outcome = (w.promise as Promise<unknown>)
      .then(
        (connection) => ({ resolved: connection }),
        (error: { code: string; message: string }) => ({ rejected: { code: error.code, message: error.message, isError: error instanceof Error } }),
      )
      .finally(() => (w.settled = true))
  }, options)
}
export const clientEvents = (on: Page) => on.evaluate(() => (window as unknown as { events: Record<string, unknown>[] }).events)
export const clientOutcome = (on: Page) => on.evaluate(() => (window as unknown as { outcome: Promise<unknown> }).outcome) as Promise<Record<string, any>>
/** Whether the client's promise is still pending: read from a flag, so it needs no timer in the page. */
export const stillPending = (on: Page) => on.evaluate(() => !(window as unknown as { settled: boolean }).settled)

/**
 * Records, before the page loads, the BroadcastChannels it opens (`window.channels`: their names)
 * and what travels on the client's (`window.seen`: "sent ping", "heard alive"…).
 */
export async function watchChannels(on: Page) {
  await on.addInitScript(() => {
    const Native = BroadcastChannel
    const w = window as unknown as { channels: string[]; seen: string[] }
    w.channels = []
    w.seen = []
    window.BroadcastChannel = class extends Native {
      constructor(name: string) {
        super(name)
        w.channels.push(name)
        if (!name.startsWith('tiktok-connect:')) return
        const own = this.postMessage.bind(this)
        this.postMessage = (message: { type: string }) => (w.seen.push(`sent ${message.type}`), own(message))
        this.addEventListener('message', ({ data }) => w.seen.push(`heard ${data?.type}`))
      }
    }
  })
}
export const channelsOpened = (on: Page) => on.evaluate(() => (window as unknown as { channels: string[] }).channels)
export const channelSeen = (on: Page) => on.evaluate(() => (window as unknown as { seen: string[] }).seen)

/** Waits for the page's POST /api/tiktok/oauth/start; a refusal (e.g. 429) fails with the Worker's answer. */
export async function startAnswered(demo: Demo, on: Page = demo.page) {
  const answer = await on.waitForResponse((response) => response.url() === `${demo.primary}/api/tiktok/oauth/start`)
  expect(answer.status(), `POST /api/tiktok/oauth/start: ${answer.ok() ? '' : await answer.text()}`).toBe(200)
}

/** The popup that `trigger` opens from `on`, once it shows the sandbox's TikTok page. */
export async function tiktokPopup(demo: Demo, trigger: () => Promise<unknown>, on: Page = demo.page): Promise<Page> {
  const [popup] = await Promise.all([on.context().waitForEvent('page'), startAnswered(demo, on), trigger()])
  await popup.waitForURL(`${demo.stack.sandboxOrigin}/tiktok/portal/auth?**`)
  await popup.waitForSelector('#authorize')
  return popup
}

/**
 * Clicks what ends the flow in the popup, which then closes itself: the close can land while
 * Playwright is still finishing the click, which is the expected outcome, not a failure.
 */
export async function finishInPopup(popup: Page, selector: string) {
  const closed = popup.waitForEvent('close')
  await popup.click(selector, { noWaitAfter: true }).catch((error: Error) => {
    if (!popup.isClosed() && !/has been closed/.test(error.message)) throw error
  })
  await closed
}

/** From the signed-in profile: connects in the popup and keeps the default advertiser; the profile shows it connected. */
export async function connectInPopup(demo: Demo) {
  const popup = await tiktokPopup(demo, () => demo.page.click('#connect'))
  await popup.click('#authorize')
  await popup.waitForSelector('body[data-outcome="choose"]')
  await finishInPopup(popup, '#actions button')
  await demo.page.waitForSelector('body[data-state="connected"]')
}

/** Profile (full-page flow) → TikTok's page in this tab; answers where Authorize and Deny would send the browser. */
export async function callbackUrls(demo: Demo): Promise<{ authorized: string; denied: string }> {
  const { page, stack } = demo
  await signIn(demo, page, 'redirect')
  await Promise.all([startAnswered(demo), page.click('#connect')])
  await page.waitForURL(`${stack.sandboxOrigin}/tiktok/portal/auth?**`)
  return { authorized: await decideAtTikTok(page, stack.sandboxOrigin, 'authorize'), denied: await decideAtTikTok(page, stack.sandboxOrigin, 'deny') }
}

/** What the Cron Trigger does every 15 minutes; wrangler dev runs it only when asked. */
export async function runSweep(demo: Demo) {
  const response = await fetch(`${demo.stack.workerOrigin}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent('*/15 * * * *')}`)
  expect(response.status, await response.clone().text()).toBe(200)
}

/** The profile, reloaded until it shows `state` (the sweep may finish under waitUntil). */
export async function profileShows(demo: Demo, state: string) {
  await vi.waitFor(
    async () => {
      await demo.page.goto(`${demo.primary}/profile`)
      await demo.page.waitForSelector('body[data-state]')
      expect(await demo.page.getAttribute('body', 'data-state')).toBe(state)
    },
    { timeout: 10_000, interval: 250 },
  )
}

/** axe-core's findings per page state, colour scheme and width, for test-artifacts/. */
const axeResults: Record<string, Finding[]> = {}

/**
 * axe-core on the page as it is, light and dark, at 1280 and 390 px: no violation at all. The
 * callback and popup pages' CSP (script-src 'self') refuses the inline script addScriptTag writes,
 * so there the same source is evaluated through DevTools, which CSP does not govern.
 */
export async function expectAccessible(on: Page, state: string) {
  if (!(await on.evaluate(() => 'axe' in window))) {
    if (new URL(on.url()).pathname.startsWith('/oauth/')) await on.evaluate(AXE_SOURCE)
    else await on.addScriptTag({ path: AXE_PATH })
  }
  const viewport = on.viewportSize() ?? DESKTOP
  for (const size of [DESKTOP, MOBILE]) {
    await on.setViewportSize(size)
    for (const scheme of ['light', 'dark'] as const) {
      await on.emulateMedia({ colorScheme: scheme })
      const violations = await on.evaluate(async () => {
        const { violations } = await (
          window as unknown as { axe: { run: (context: Document) => Promise<{ violations: { id: string; impact: string | null; nodes: unknown[] }[] }> } }
        ).axe.run(document)
        return violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }))
      })
      const key = `${state} (${scheme}, ${size.width})`
      axeResults[key] = violations
      expect(violations, key).toEqual([])
    }
  }
  await on.emulateMedia({ colorScheme: 'light' })
  await on.setViewportSize(viewport)
}

/** At the page's width: nothing scrolls sideways, and every button and link is at least 44×44 px. */
export async function expectTouchFriendly(on: Page) {
  const small = await on.evaluate(() => {
    const tooSmall: string[] = []
    for (const node of document.querySelectorAll('button, a, summary, input[type="radio"]')) {
      const target = node instanceof HTMLInputElement ? node.closest('label')! : node
      const box = target.getBoundingClientRect()
      if (box.width && box.height && (box.width < 44 || box.height < 44)) tooSmall.push(`${node.outerHTML.slice(0, 60)} ${box.width}×${box.height}`)
    }
    return { tooSmall, overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth }
  })
  expect(small).toEqual({ tooSmall: [], overflow: 0 })
}

/** A screenshot in test-artifacts/, and in docs/ for the README when asked to. */
export async function shoot(on: Page, name: string, docs = false) {
  const path = join(ARTIFACTS, `${name}.png`)
  await on.screenshot({ path })
  if (docs && TO_DOCS) copyFileSync(path, join(ROOT, 'docs', `${name}.png`))
}
