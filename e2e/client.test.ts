// Issue 11 in a browser: /oauth/tiktok-connect.js (popup, redirect fallback, closing, stray
// messages), the demo profile built on it (advertiser switch, revoked → Reconnect), and axe-core on
// every state of the callback page and the profile.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import { ROOT, type Stack, startStack } from '../scripts/stack.ts'
import { ARTIFACTS, launchBrowser } from './browser.ts'

// Apart from `npm run dev`'s ports and the other e2e files'.
const WORKER_PORT = 8879
const SANDBOX_PORT = 8892
const [US, EU] = DEMO_ADVERTISERS as [(typeof DEMO_ADVERTISERS)[0], (typeof DEMO_ADVERTISERS)[0]]
const AXE_SOURCE = readFileSync(join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8')
/** `SCREENSHOTS_TO_DOCS=1` also copies the README's screenshots into docs/. */
const TO_DOCS = process.env.SCREENSHOTS_TO_DOCS === '1'

let stack: Stack
let browser: Browser
let context: BrowserContext
let page: Page
let primary: string
/** axe-core's findings per page state, written to test-artifacts/axe.json for the closing note. */
const axeResults: Record<string, { violations: { id: string; impact: string | null; nodes: number }[]; passes: number }> = {}

beforeAll(async () => {
  stack = await startStack({ workerPort: WORKER_PORT, sandboxPort: SANDBOX_PORT, useDevVars: false, quiet: true })
  primary = stack.vars.ALLOWED_ORIGINS!.split(',')[0]!
  browser = await launchBrowser()
})

afterAll(async () => {
  if (Object.keys(axeResults).length) writeFileSync(join(ARTIFACTS, 'axe.json'), `${JSON.stringify(axeResults, null, 2)}\n`)
  await browser?.close()
  await stack?.stop()
})

beforeEach(async () => {
  await fetch(`${stack.sandboxOrigin}/__sandbox/reset`, { method: 'POST' })
  context = await browser.newContext()
  page = await context.newPage()
})

afterEach(async () => {
  await context.close()
})

const demoRow = async () => (await stack.sandbox.supabase.account(DEMO_USER.id))!
const profileUrl = (mode = 'auto') => `${primary}/profile?supabase=${encodeURIComponent(`${stack.sandboxOrigin}/supabase`)}&mode=${mode}`
const exchangeCalls = () => stack.sandbox.tiktok.requests.filter((r) => r.path.endsWith('/oauth2/access_token/')).length

/** Signs in on the demo profile; answers when it shows the TikTok section. */
async function signIn(on: Page = page, mode = 'auto') {
  await on.goto(profileUrl(mode))
  await on.click('#sign-in-button')
  await on.waitForSelector('body[data-connected]:not([data-state="signed-out"])')
}

type Client = typeof import('../public/oauth/tiktok-connect.js')
/** The client module as a product page imports it, on `window.client` (the profile has no CSP). */
async function loadClient(on: Page = page) {
  await on.addScriptTag({ type: 'module', content: "import * as client from '/oauth/tiktok-connect.js'; window.client = client" })
  await on.waitForFunction(() => 'client' in window)
}

/** Starts connectTikTok in the page, as a click handler would, and records its events and outcome. */
async function startClient(options: Record<string, unknown> = {}) {
  await loadClient()
  await page.evaluate(async (options) => {
    const client = (window as unknown as { client: Client }).client
    const { accessToken } = JSON.parse(sessionStorage.getItem('demo_supabase_session')!)
    const w = window as unknown as Record<string, unknown>
    const events: Record<string, unknown>[] = []
    w.events = events
    w.promise = client.connectTikTok({ accessToken, onEvent: (e: Record<string, unknown>) => events.push(e), ...options })
    w.outcome = (w.promise as Promise<unknown>).then(
      (connection: unknown) => ({ resolved: connection }),
      (error: { code: string; message: string }) => ({ rejected: { code: error.code, message: error.message, isError: error instanceof Error } }),
    )
  }, options)
}
const clientEvents = () => page.evaluate(() => (window as unknown as { events: { type: string }[] }).events)
const clientOutcome = () => page.evaluate(() => (window as unknown as { outcome: Promise<unknown> }).outcome) as Promise<Record<string, any>>
/** Whether the client's promise is still pending. */
const pending = () =>
  page.evaluate(() => Promise.race([(window as unknown as { outcome: Promise<unknown> }).outcome.then(() => false), new Promise((r) => setTimeout(r, 50, true))]))

/** The popup the client opens, once it shows the sandbox's TikTok page. */
async function tiktokPopup(trigger: () => Promise<unknown>): Promise<Page> {
  const [popup] = await Promise.all([context.waitForEvent('page'), trigger()])
  await popup.waitForURL(`${stack.sandboxOrigin}/tiktok/portal/auth?**`)
  await popup.waitForSelector('#authorize')
  return popup
}

describe('connectTikTok in a popup', () => {
  it('resolves with the stored connection after the choice; events in order; the popup closes itself; a second call focuses the same popup', async () => {
    await signIn()
    const popup = await tiktokPopup(() => startClient())
    // A second click while the popup is open: no second window, the same promise.
    const same = await page.evaluate(() => {
      const w = window as unknown as { client: Client; promise: unknown }
      return w.client.connectTikTok({ accessToken: 'unused' }) === w.promise
    })
    expect(same).toBe(true)
    expect(context.pages()).toHaveLength(2)
    // TikTok's page cannot reach (or navigate) the product page.
    expect(await popup.evaluate(() => window.opener)).toBeNull()
    await popup.click('#authorize')
    await popup.waitForSelector('body[data-outcome="choose"]')
    expect(await popup.getAttribute('body', 'data-popup')).toBe('yes')
    const closed = popup.waitForEvent('close')
    await popup.click(`button.choice[data-id="${EU.id}"]`)
    await closed

    const outcome = await clientOutcome()
    const row = await demoRow()
    expect(outcome.resolved).toEqual({
      business_id: EU.id,
      account_id: EU.name,
      advertisers: DEMO_ADVERTISERS,
      connected_at: expect.any(String),
    })
    expect(Date.parse(outcome.resolved.connected_at)).toBe(Date.parse(row.tiktok_connected_at as string))
    expect((await clientEvents()).map((e) => e.type)).toEqual(['opened', 'authorized', 'advertiser_chosen', 'connected', 'closed'])
    expect(await clientEvents()).toContainEqual({ type: 'opened', mode: 'popup' })
    expect(await clientEvents()).toContainEqual({ type: 'advertiser_chosen', business_id: EU.id })
    expect(row.tiktok_business_id).toBe(EU.id)
    expect(exchangeCalls()).toBe(1)
    // Nothing the flow put in storage outlives it, and no token reached a URL or the popup's storage.
    expect(JSON.stringify(outcome)).not.toContain(row.tiktok_access_token as string)
  })
})
