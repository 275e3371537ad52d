// Issue 11 in a browser: /oauth/tiktok-connect.js (popup, redirect fallback, a closed popup, stray
// messages), the demo profile built on it (advertiser switch, revoked → Reconnect, a choice the
// sweep cleared), and axe-core on every state of the callback page and the profile.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import { ROOT, type Stack, startStack } from '../scripts/stack.ts'
import { ARTIFACTS, decideAtTikTok, launchBrowser } from './browser.ts'

// Apart from `npm run dev`'s ports and the other e2e files'.
// One stack serves the whole file, and its Worker allows the demo user 10 /start and 10 /exchange a
// minute (wall-clock windows): the file makes 9 of each in all, so no window can run out.
const WORKER_PORT = 8879
const SANDBOX_PORT = 8892
const [US, EU] = DEMO_ADVERTISERS as [(typeof DEMO_ADVERTISERS)[0], (typeof DEMO_ADVERTISERS)[0]]
const AXE_PATH = join(ROOT, 'node_modules/axe-core/axe.min.js')
const AXE_SOURCE = readFileSync(AXE_PATH, 'utf8')
const DESKTOP = { width: 1280, height: 800 }
const MOBILE = { width: 390, height: 844 }
/** `SCREENSHOTS_TO_DOCS=1` also writes the README's few screenshots to docs/. */
const TO_DOCS = process.env.SCREENSHOTS_TO_DOCS === '1'

type Client = typeof import('../public/oauth/tiktok-connect.js')
type Finding = { id: string; impact: string | null; nodes: number }

let stack: Stack
let browser: Browser
let context: BrowserContext
let page: Page
let primary: string
/** axe-core's findings per page state and colour scheme, written to test-artifacts/axe.json. */
const axeResults: Record<string, Finding[]> = {}

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
  context = await browser.newContext({ viewport: DESKTOP })
  page = await context.newPage()
})

afterEach(async () => {
  await context.close()
})

const demoRow = async () => (await stack.sandbox.supabase.row(DEMO_USER.id))!
const profileUrl = (mode = 'auto') => `${primary}/profile?supabase=${encodeURIComponent(`${stack.sandboxOrigin}/supabase`)}&mode=${mode}`
const exchangeCalls = () => stack.sandbox.tiktok.requests.filter((r) => r.path.endsWith('/oauth2/access_token/')).length
const sandboxPost = (path: string, body: unknown) =>
  fetch(`${stack.sandboxOrigin}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/** Signs in on the demo profile; answers when it shows the TikTok section. */
async function signIn(on: Page = page, mode = 'auto') {
  await on.goto(profileUrl(mode))
  await on.click('#sign-in-button')
  await on.waitForSelector('body[data-state]:not([data-state="signed-out"])')
}

/** The client module as a product page imports it, on `window.client` (the profile has no CSP). */
async function loadClient(on: Page = page) {
  await on.addScriptTag({ type: 'module', content: "import * as client from '/oauth/tiktok-connect.js'; window.client = client" })
  await on.waitForFunction(() => 'client' in window)
}

/** Starts connectTikTok in the page, as a click handler would, and records its events and outcome. */
async function startClient(options: Record<string, unknown> = {}) {
  await loadClient()
  await page.evaluate((options) => {
    const w = window as unknown as Record<string, unknown> & { client: Client }
    const { accessToken } = JSON.parse(sessionStorage.getItem('demo_supabase_session')!)
    const events: unknown[] = []
    w.events = events
    w.promise = w.client.connectTikTok({ accessToken, onEvent: (e) => events.push(e), ...options })
    w.outcome = (w.promise as Promise<unknown>).then(
      (connection) => ({ resolved: connection }),
      (error: { code: string; message: string }) => ({ rejected: { code: error.code, message: error.message, isError: error instanceof Error } }),
    )
  }, options)
}
const clientEvents = () => page.evaluate(() => (window as unknown as { events: Record<string, unknown>[] }).events)
const clientOutcome = () => page.evaluate(() => (window as unknown as { outcome: Promise<unknown> }).outcome) as Promise<Record<string, any>>
/** Whether the client's promise is still pending. */
const stillPending = () =>
  page.evaluate(() => Promise.race([(window as unknown as { outcome: Promise<unknown> }).outcome.then(() => false), new Promise((r) => setTimeout(r, 50, true))]))

/** Waits for the page's POST /api/tiktok/oauth/start; a refusal (e.g. 429) fails with the Worker's answer. */
async function startAnswered(on: Page = page) {
  const answer = await on.waitForResponse((response) => response.url() === `${primary}/api/tiktok/oauth/start`)
  expect(answer.status(), `POST /api/tiktok/oauth/start: ${answer.ok() ? '' : await answer.text()}`).toBe(200)
}

/** The popup that `trigger` opens, once it shows the sandbox's TikTok page. */
async function tiktokPopup(trigger: () => Promise<unknown>): Promise<Page> {
  const [popup] = await Promise.all([context.waitForEvent('page'), startAnswered(), trigger()])
  await popup.waitForURL(`${stack.sandboxOrigin}/tiktok/portal/auth?**`)
  await popup.waitForSelector('#authorize')
  return popup
}

/**
 * Clicks what ends the flow in the popup, which then closes itself: the close can land while
 * Playwright is still finishing the click, which is the expected outcome, not a failure.
 */
async function finishInPopup(popup: Page, selector: string) {
  const closed = popup.waitForEvent('close')
  await popup.click(selector, { noWaitAfter: true }).catch((error: Error) => {
    if (!popup.isClosed() && !/has been closed/.test(error.message)) throw error
  })
  await closed
}

/** Submits TikTok's form as its button would and returns the callback URL TikTok redirects to. */
const decide = (on: Page, decision: 'authorize' | 'deny') => decideAtTikTok(on, stack.sandboxOrigin, decision)

/** Profile (full-page flow) → TikTok's page in this tab; answers where Authorize and Deny would send the browser. */
async function callbackUrls(): Promise<{ authorized: string; denied: string }> {
  await signIn(page, 'redirect')
  await Promise.all([startAnswered(), page.click('#connect')])
  await page.waitForURL(`${stack.sandboxOrigin}/tiktok/portal/auth?**`)
  return { authorized: await decide(page, 'authorize'), denied: await decide(page, 'deny') }
}

/** What the Cron Trigger does every 15 minutes; wrangler dev runs it only when asked. */
async function runSweep() {
  const response = await fetch(`${stack.workerOrigin}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent('*/15 * * * *')}`)
  expect(response.status, await response.clone().text()).toBe(200)
}

/** The profile, reloaded until it shows `state` (the sweep may finish under waitUntil). */
async function profileShows(state: string) {
  await vi.waitFor(
    async () => {
      await page.goto(`${primary}/profile`)
      await page.waitForSelector('body[data-state]')
      expect(await page.getAttribute('body', 'data-state')).toBe(state)
    },
    { timeout: 10_000, interval: 250 },
  )
}

/**
 * axe-core on the page as it is, light and dark: no serious or critical violation. The callback
 * and popup pages' CSP (script-src 'self') refuses the inline script addScriptTag writes, so there
 * the same source is evaluated through DevTools, which CSP does not govern.
 */
async function expectAccessible(on: Page, state: string) {
  if (!(await on.evaluate(() => 'axe' in window))) {
    if (new URL(on.url()).pathname.startsWith('/oauth/')) await on.evaluate(AXE_SOURCE)
    else await on.addScriptTag({ path: AXE_PATH })
  }
  for (const scheme of ['light', 'dark'] as const) {
    await on.emulateMedia({ colorScheme: scheme })
    const violations = await on.evaluate(async () => {
      const { violations } = await (window as unknown as { axe: { run: (context: Document) => Promise<{ violations: { id: string; impact: string | null; nodes: unknown[] }[] }> } }).axe.run(document)
      return violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }))
    })
    axeResults[`${state} (${scheme})`] = violations
    expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'), `${state}, ${scheme}`).toEqual([])
  }
  await on.emulateMedia({ colorScheme: 'light' })
}

/** At 390 px: nothing scrolls sideways, and every button and link is at least 44×44 px. */
async function expectTouchFriendly(on: Page) {
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
async function shoot(on: Page, name: string, docs = false) {
  const path = join(ARTIFACTS, `${name}.png`)
  await on.screenshot({ path })
  if (docs && TO_DOCS) copyFileSync(path, join(ROOT, 'docs', `${name}.png`))
}

describe('connectTikTok in a popup', () => {
  it('resolves with the stored connection after the choice; events in order; the popup closes itself; a second call focuses the same popup', async () => {
    await signIn()
    const urls: string[] = []
    context.on('request', (request) => urls.push(request.url()))
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
    await finishInPopup(popup, `button.choice[data-id="${EU.id}"]`)

    const outcome = await clientOutcome()
    const row = await demoRow()
    expect(outcome.resolved).toEqual({ business_id: EU.id, account_id: EU.name, advertisers: DEMO_ADVERTISERS, connected_at: expect.any(String) })
    expect(Date.parse(outcome.resolved.connected_at)).toBe(Date.parse(row.connected_at as string))
    const events = await clientEvents()
    expect(events.map((e) => e.type)).toEqual(['opened', 'authorized', 'advertiser_chosen', 'connected', 'closed'])
    expect(events[0]).toEqual({ type: 'opened', mode: 'popup' })
    expect(events[2]).toEqual({ type: 'advertiser_chosen', business_id: EU.id })
    expect(events[3]).toEqual({ type: 'connected', connection: outcome.resolved })
    expect(row.advertiser_id).toBe(EU.id)
    expect(exchangeCalls()).toBe(1)
    // The access token never reached a URL; the popup's path started at the placeholder.
    const token = (await page.evaluate(() => JSON.parse(sessionStorage.getItem('demo_supabase_session')!).accessToken)) as string
    expect(urls.filter((url) => url.includes(token))).toEqual([])
    expect(urls).toContain(`${primary}/oauth/popup`)
  })

  it('popup blocked: mode "popup" rejects with popup_blocked; "auto" (the profile) goes the full-page way and completes', async () => {
    await page.addInitScript(() => {
      window.open = () => null
    })
    await signIn()
    await startClient({ mode: 'popup' })
    expect((await clientOutcome()).rejected).toMatchObject({ code: 'popup_blocked', isError: true })
    expect((await clientEvents()).map((e) => e.type)).toEqual(['error'])

    expect(await page.isChecked('input[name="mode"][value="auto"]')).toBe(true)
    await Promise.all([startAnswered(), page.click('#connect')])
    await page.waitForURL(`${stack.sandboxOrigin}/tiktok/portal/auth?**`)
    await page.click('#authorize')
    await page.waitForSelector('body[data-outcome="choose"]')
    expect(await page.getAttribute('body', 'data-popup')).toBe('no')
    await page.click(`button.choice[data-id="${US.id}"]`)
    await page.waitForURL(`${primary}/profile`)
    await page.waitForSelector('body[data-state="connected"]')
    expect(context.pages()).toHaveLength(1)
    expect((await demoRow()).advertiser_id).toBe(US.id)
  })

  it('closing the popup at TikTok rejects with popup_closed; closing it after TikTok said yes resolves with what was stored', { timeout: 90_000 }, async () => {
    await signIn()
    const atTikTok = await tiktokPopup(() => startClient())
    await atTikTok.close()
    const outcome = await clientOutcome()
    expect(outcome.rejected).toMatchObject({ code: 'popup_closed', isError: true })
    expect((await clientEvents()).map((e) => e.type)).toEqual(['opened', 'error', 'closed'])
    expect(await clientEvents()).toContainEqual({ type: 'error', code: 'popup_closed', message: outcome.rejected.message })

    // Back from TikTok, choosing: popup.closed already reads true in the opener, yet nothing
    // rejects while the popup answers. Closed then, the exchange had already stored the connection
    // (the first advertiser): the client reads it and resolves, instead of reporting a failure the
    // Worker's events would contradict.
    const choosing = await tiktokPopup(() => startClient())
    await choosing.click('#authorize')
    await choosing.waitForSelector('body[data-outcome="choose"]')
    await page.waitForTimeout(4000)
    expect(await stillPending()).toBe(true)
    expect((await clientEvents()).map((e) => e.type)).toEqual(['opened', 'authorized'])
    await choosing.close()
    expect((await clientOutcome()).resolved).toMatchObject({ business_id: US.id })
    expect((await clientEvents()).map((e) => e.type)).toEqual(['opened', 'authorized', 'connected', 'closed'])
    expect((await demoRow()).advertiser_id).toBe(US.id)
  })

  it('ignores a BroadcastChannel message of another flow and a postMessage from another origin (or this one)', async () => {
    // Records the channel names the client opens, so the test can post on its very channel.
    await page.addInitScript(() => {
      const Native = BroadcastChannel
      const names: string[] = ((window as unknown as { channels: string[] }).channels = [])
      window.BroadcastChannel = class extends Native {
        constructor(name: string) {
          super(name)
          names.push(name)
        }
      }
    })
    await signIn()
    const popup = await tiktokPopup(() => startClient())
    const [name] = (await page.evaluate(() => (window as unknown as { channels: string[] }).channels)) as [string]
    const flow = name.replace('tiktok-connect:', '')
    expect(flow).toMatch(/^[0-9a-f]{32}$/)
    const forged = { v: 1, type: 'done', ok: false, code: 'forged', error: 'forged' }

    // Another tab of the product, same origin: other flows, and this flow's channel with another flow id.
    const other = await context.newPage()
    await other.goto(`${primary}/profile`)
    await other.evaluate(
      ({ name, flow, forged }) => {
        const other = 'f'.repeat(32)
        new BroadcastChannel(`tiktok-connect:${other}`).postMessage({ ...forged, flow: other })
        new BroadcastChannel('tiktok-connect').postMessage({ ...forged, flow })
        new BroadcastChannel(name).postMessage({ ...forged, flow: other })
        new BroadcastChannel(name).postMessage({ ...forged, v: 2, flow })
        new BroadcastChannel(name).postMessage(`{"v":1,"flow":"${flow}","type":"done"}`)
      },
      { name, flow, forged },
    )
    // Another origin (a frame of the sandbox) and this page itself, by window.postMessage.
    await page.evaluate((src) => {
      const frame = document.createElement('iframe')
      frame.src = src
      document.body.append(frame)
      return new Promise((resolve) => frame.addEventListener('load', resolve))
    }, `${stack.sandboxOrigin}/webhooks`)
    const frame = page.frames().find((f) => f.url().startsWith(stack.sandboxOrigin))!
    await frame.evaluate(({ flow, forged }) => parent.postMessage({ ...forged, flow }, '*'), { flow, forged })
    await page.evaluate(({ flow, forged }) => postMessage({ ...forged, flow }, location.origin), { flow, forged })
    await page.waitForTimeout(1000)
    expect(await stillPending()).toBe(true)
    expect((await clientEvents()).map((e) => e.type)).toEqual(['opened'])

    // The real flow still completes.
    await popup.click('#authorize')
    await popup.waitForSelector('body[data-outcome="choose"]')
    await finishInPopup(popup, '#actions button')
    expect((await clientOutcome()).resolved).toMatchObject({ business_id: US.id })
  })

  it('the API wrappers throw an Error with code, status, retryable and requestId; returnTo must be a path here', async () => {
    await signIn()
    await loadClient()
    const failures = await page.evaluate(async () => {
      const { client } = window as unknown as { client: Client }
      const caught = async (work: () => Promise<unknown>) => {
        try {
          await work()
          return null
        } catch (error) {
          const e = error as Error & Record<string, unknown>
          return { isError: e instanceof Error, code: e.code, status: e.status, retryable: e.retryable, requestId: e.requestId, message: e.message }
        }
      }
      const { accessToken } = JSON.parse(sessionStorage.getItem('demo_supabase_session')!)
      return {
        unauthorized: await caught(() => client.getConnection('not-a-token')),
        notConnected: await caught(() => client.chooseAdvertiser(accessToken, '7412345678901234567')),
        disconnect: await client.disconnect(accessToken),
        offSite: await caught(() => client.connectTikTok({ accessToken, returnTo: '//evil.example/x' })),
      }
    })
    expect(failures.unauthorized).toMatchObject({ isError: true, code: 'unauthorized', status: 401, retryable: false, requestId: expect.stringMatching(/\S/) })
    expect(failures.notConnected).toMatchObject({ isError: true, code: 'not_connected', status: 404 })
    expect(failures.disconnect).toMatchObject({ success: true, revoked: false, message: 'No TikTok account was connected.' })
    expect(failures.offSite).toMatchObject({ isError: true, code: 'invalid_return_to' })
    expect(context.pages()).toHaveLength(1)
  })
})

describe('the demo profile, through the client', () => {
  it('signs in (a wrong password first), connects in a popup, switches the advertiser with the picker (the Current badge follows), disconnects', async () => {
    await page.goto(profileUrl())
    await expectAccessible(page, 'profile: signed out')
    await page.fill('#password', 'not-the-password')
    await page.click('#sign-in-button')
    await page.waitForSelector('#error:visible')
    await expectAccessible(page, 'profile: error')
    await page.fill('#password', DEMO_USER.password)
    await page.click('#sign-in-button')
    await page.waitForSelector('body[data-state="not-connected"]')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tiktok-heading')
    expect(await page.getAttribute('#status', 'role')).toBe('status')
    await expectAccessible(page, 'profile: not connected')

    const popup = await tiktokPopup(() => page.click('#connect'))
    await popup.click('#authorize')
    await popup.waitForSelector('body[data-outcome="choose"]')
    await finishInPopup(popup, '#actions button')
    await page.waitForSelector('body[data-state="connected"]')
    expect(await page.locator('#event-log li').allTextContents()).toEqual([
      'opened (popup)',
      'authorized',
      `connected (${US.id})`,
      'closed',
    ])
    const current = () => page.locator('#advertiser-list .choice:has(.badge) .name').allTextContents()
    expect(await current()).toEqual([US.name])
    await expectAccessible(page, 'profile: connected')
    await shoot(page, 'profile-connected', true)
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await shoot(page, 'profile-connected-390', true)
    await page.setViewportSize(DESKTOP)

    await page.click(`#advertiser-list button[data-id="${EU.id}"]`)
    await page.waitForFunction((name) => document.querySelector('#advertiser-list .choice:has(.badge) .name')?.textContent === name, EU.name)
    expect(await page.textContent('#status')).toBe(`Connected: ${EU.name} (${EU.id})`)
    expect(await page.locator('#advertiser-list button[data-id]').evaluateAll((b) => b.map((x) => (x as HTMLElement).dataset.id))).toEqual([US.id])
    expect((await demoRow()).advertiser_id).toBe(EU.id)

    await page.click('#disconnect')
    await page.waitForSelector('body[data-state="not-connected"]')
    // Said once, not "TikTok disconnected, and TikTok confirmed…".
    expect(await page.textContent('#status')).toBe('TikTok is disconnected, and its access is revoked.')
    expect((await demoRow()).access_token).toBeNull()
  })

  it('revoked at TikTok → Check with TikTok shows "TikTok access was removed" → Reconnect (popup) connects again', async () => {
    await signIn()
    const popup = await tiktokPopup(() => page.click('#connect'))
    await popup.click('#authorize')
    await popup.waitForSelector('body[data-outcome="choose"]')
    await finishInPopup(popup, '#actions button')
    await page.waitForSelector('body[data-state="connected"]')
    const token = (await demoRow()).access_token as string
    expect(await (await sandboxPost('/__sandbox/tiktok/revoke', { token })).json()).toEqual({ revoked: 1 })

    await page.click('#verify')
    await page.waitForSelector('body[data-state="revoked"]')
    expect(await page.textContent('#status')).toBe(`TikTok access was removed (${US.name}, ${US.id}). Reconnect to use it again.`)
    expect(await page.textContent('#connect')).toBe('Reconnect')
    expect(await page.isVisible('#disconnect')).toBe(false)
    expect(await page.getAttribute('#status-icon', 'class')).toBe('icon small failed')
    await expectAccessible(page, 'profile: revoked')
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await shoot(page, 'profile-revoked-390', true)
    await page.setViewportSize(DESKTOP)

    const again = await tiktokPopup(() => page.click('#connect'))
    await again.click('#authorize')
    await again.waitForSelector('body[data-outcome="choose"]')
    await finishInPopup(again, '#actions button')
    await page.waitForSelector('body[data-state="connected"]')
    const row = await demoRow()
    expect(row.revoked_at).toBeNull()
    expect(row.access_token).not.toBe(token)
  })
})

describe('the callback page', () => {
  it('every state: working, choosing, connected, choosing again after the sweep cleared the choice (the profile asks too), denied, nothing in progress; the popup placeholder', async () => {
    const { authorized, denied } = await callbackUrls()
    // A slow TikTok keeps the working state up long enough to check it (under the Worker's 8 s timeout).
    await sandboxPost('/__sandbox/faults', { target: 'token', fault: { latencyMs: 5000 } })
    await page.goto(authorized)
    expect(await page.getAttribute('#icon', 'class')).toBe('icon pending')
    expect(await page.getAttribute('main', 'aria-busy')).toBe('true')
    await expectAccessible(page, 'callback: working')
    expect(await page.getAttribute('body', 'data-outcome')).toBeNull()

    await page.waitForSelector('body[data-outcome="choose"]', { timeout: 15_000 })
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('title')
    // Only the outcome is announced, not the whole card.
    expect(await page.getAttribute('main', 'aria-live')).toBeNull()
    expect(await page.textContent('#announce')).toBe(`${await page.textContent('#title')}. ${await page.textContent('#message')}`)
    await expectAccessible(page, 'callback: choosing')
    await shoot(page, 'callback-choose', true)
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await shoot(page, 'callback-choose-390', true)
    await page.setViewportSize(DESKTOP)
    await page.click('#actions a')
    await page.waitForSelector('body[data-state="connected"]')

    // The sweep finds the chosen advertiser gone from the grant and clears the choice.
    expect(await (await sandboxPost('/__sandbox/tiktok/remove-advertiser', { advertiser_id: US.id })).json()).toEqual({ changed: 1 })
    await runSweep()
    await profileShows('choosing')
    expect(await page.locator('#advertiser-list .badge').count()).toBe(0)
    expect(await page.locator('#advertiser-list button[data-id]').count()).toBe(1)
    await expectAccessible(page, 'profile: choosing')

    // The same callback again (a reload, a second tab): one advertiser left, and still a choice.
    await page.goto(authorized)
    await page.waitForSelector('body[data-outcome="choose"]')
    expect(await page.locator('button.choice').evaluateAll((b) => b.map((x) => (x as HTMLElement).dataset.id))).toEqual([EU.id])
    expect(await page.textContent('#message')).toMatch(/no longer shared/)
    expect(await page.textContent('#actions')).toBe('Not now')
    await expectAccessible(page, 'callback: choosing again')
    await page.click(`button.choice[data-id="${EU.id}"]`)
    await page.waitForSelector('body[data-outcome="success"]')
    expect(await page.getAttribute('#icon', 'class')).toBe('icon done')
    await page.waitForURL(`${primary}/profile`)
    await page.waitForSelector('body[data-state="connected"]')
    expect((await demoRow()).advertiser_id).toBe(EU.id)
    expect(exchangeCalls()).toBe(1)

    // A revisit shows the last outcome without redirecting: the connected state, at rest.
    await page.goto(`${primary}/oauth/callback`)
    await page.waitForSelector('body[data-outcome="success"]')
    expect(await page.textContent('#actions')).toBe('Continue')
    await expectAccessible(page, 'callback: connected')

    await page.goto(denied)
    await page.waitForSelector('body[data-outcome="denied"]')
    expect(await page.getAttribute('#icon', 'class')).toBe('icon failed')
    expect(await page.textContent('#actions')).toBe('Back to your profile')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('title')
    await expectAccessible(page, 'callback: error (denied)')
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await page.setViewportSize(DESKTOP)

    const fresh = await browser.newContext({ viewport: DESKTOP })
    const nothing = await fresh.newPage()
    await nothing.goto(`${primary}/oauth/callback`)
    await nothing.waitForSelector('body[data-outcome="no_authorization"]')
    // Nothing was tried, so nothing says "try again".
    expect(await nothing.textContent('#actions')).toBe('Go to your profile')
    await expectAccessible(nothing, 'callback: nothing in progress')
    await nothing.goto(`${primary}/oauth/popup`)
    await expectAccessible(nothing, 'popup placeholder')
    await fresh.close()
  })
})
