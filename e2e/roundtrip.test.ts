import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import { createHmac } from 'node:crypto'
import { type Stack, startStack } from '../scripts/stack.ts'
import { ARTIFACTS, decideAtTikTok, launchBrowser } from './browser.ts'

// Ports apart from `npm run dev`'s, so both can run at once.
const WORKER_PORT = 8877
const SANDBOX_PORT = 8890
/** A host name that is not loopback, which Chromium resolves to the Worker anyway: no link sends its password elsewhere. */
const NON_LOOPBACK_HOST = 'demo.test'
const BINDING_COOKIE = '__Host-tiktok_oauth_binding'

let stack: Stack
let browser: Browser
let context: BrowserContext
let page: Page
let primary: string
let secondary: string

beforeAll(async () => {
  stack = await startStack({ workerPort: WORKER_PORT, sandboxPort: SANDBOX_PORT, useDevVars: false, quiet: true, raisedLimits: true })
  ;[primary, secondary] = stack.vars.ALLOWED_ORIGINS!.split(',') as [string, string]
  browser = await launchBrowser([`--host-resolver-rules=MAP ${NON_LOOPBACK_HOST} 127.0.0.1`])
})

afterAll(async () => {
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

const exchangeCalls = () => stack.sandbox.tiktok.requests.filter((r) => r.path.endsWith('/oauth2/access_token/')).length
const demoRow = async () => (await stack.sandbox.supabase.row(DEMO_USER.id))!
/** The demo profile opens TikTok in a popup by default; these round trips are the full-page flow. */
const FULL_PAGE = '?mode=redirect'

/** Signs in on the demo product page and presses Connect: the browser lands on TikTok's page. */
async function openTikTok(origin: string) {
  await page.goto(`${origin}/profile${FULL_PAGE}`)
  await page.click('#sign-in-button')
  await page.waitForSelector('#connect:visible')
  const start = page.waitForResponse((response) => response.url() === `${origin}/api/tiktok/oauth/start`)
  await page.click('#connect')
  // A refused /start (e.g. 429 rate_limited) fails here with the Worker's answer, not as a timeout.
  const answer = await start
  expect(answer.status(), `POST /api/tiktok/oauth/start: ${answer.ok() ? '' : await answer.text()}`).toBe(200)
  await page.waitForURL(`${stack.sandboxOrigin}/tiktok/portal/auth?**`)
  await expect(page.locator('h1').textContent()).resolves.toContain('Authorize app')
}

/** Submits the TikTok page's form as a button would; answers the callback URL TikTok redirects to. */
const decide = (decision: 'authorize' | 'deny') => decideAtTikTok(page, stack.sandboxOrigin, decision)

/**
 * A correctly signed state whose ten minutes ran out, written from the documented format
 * (`v1.<payload>.<HMAC-SHA256>`) rather than with the Worker's own code.
 */
function expiredState(secret: string, origin: string): string {
  const iat = Math.floor(Date.now() / 1000) - 11 * 60
  const payload = { v: 1, p: 'tiktok_business', u: DEMO_USER.id, o: origin, r: '/profile', iat, exp: iat + 600, n: 'A'.repeat(43) }
  const body = `v1.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`
}

/**
 * The browser-binding cookie as Chromium stored it for `origin`, checked against the `__Host-`
 * rules (Secure, Path=/, no Domain) that /start sets it with over plain http. Returns its value.
 */
async function bindingCookie(origin: string): Promise<string> {
  const cookies = (await context.cookies(origin)).filter((c) => c.name === BINDING_COOKIE)
  expect(cookies, `${BINDING_COOKIE} stored for ${origin}`).toHaveLength(1)
  const cookie = cookies[0]!
  // Host-only: Chromium reports a Domain cookie as ".<domain>", a host-only one as the bare host.
  expect(cookie).toMatchObject({ domain: new URL(origin).hostname, path: '/', httpOnly: true, secure: true, sameSite: 'Lax' })
  expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/)
  // Max-Age is the state's ten minutes.
  const now = Date.now() / 1000
  expect(cookie.expires).toBeGreaterThan(now + 9 * 60)
  expect(cookie.expires).toBeLessThanOrEqual(now + 10 * 60 + 1)
  return cookie.value
}

/** Opens the callback page and waits until it shows an outcome. */
async function runCallback(url: string) {
  await page.goto(url)
  await page.waitForSelector('body[data-outcome]')
  return {
    outcome: await page.getAttribute('body', 'data-outcome'),
    title: await page.textContent('#title'),
    message: await page.textContent('#message'),
  }
}

describe('browser round trip against wrangler dev + sandbox', () => {
  it('sign in → Connect → authorize at TikTok → choose an advertiser → back on the product page, row written', async () => {
    const seen: string[] = []
    page.on('request', (request) => {
      if (new URL(page.url()).pathname === '/oauth/callback' || request.url().includes('/oauth/callback')) seen.push(request.url())
    })
    await openTikTok(primary)
    await page.screenshot({ path: join(ARTIFACTS, 'tiktok-authorize.png') })
    await page.click('#authorize')

    // The callback page runs, strips the code from the address bar, and offers both advertisers.
    await page.waitForSelector('body[data-outcome="choose"]')
    expect(page.url()).toBe(`${primary}/oauth/callback`)
    expect(await page.evaluate(() => location.search)).toBe('')
    // Name, then the id; the one stored meanwhile is only the default; each card says what it does.
    const choices = await page
      .locator('button.choice')
      .evaluateAll((buttons) => buttons.map((b) => [...b.querySelectorAll('.name, .id, .badge, .go')].map((part) => part.textContent)))
    expect(choices).toEqual([
      [DEMO_ADVERTISERS[0]!.name, `ID ${DEMO_ADVERTISERS[0]!.id}`, 'Selected by default', 'Use this account'],
      [DEMO_ADVERTISERS[1]!.name, `ID ${DEMO_ADVERTISERS[1]!.id}`, 'Use this account'],
    ])
    // Usable before the choice: the first advertiser is stored at once.
    expect((await demoRow()).advertiser_id).toBe(DEMO_ADVERTISERS[0]!.id)
    await page.screenshot({ path: join(ARTIFACTS, 'callback-choose.png') })

    await page.click(`button.choice[data-id="${DEMO_ADVERTISERS[1]!.id}"]`)
    await page.waitForSelector('body[data-outcome="success"]')
    expect(await page.textContent('#title')).toBe('TikTok connected')
    await page.screenshot({ path: join(ARTIFACTS, 'callback-success.png') })

    // …then returns to the product, which shows the connection from the Worker (no token).
    await page.waitForURL(`${primary}/profile`)
    await page.waitForSelector('body[data-connected="yes"]')
    expect(await page.textContent('#status')).toBe(`TikTok is connected. This product uses ${DEMO_ADVERTISERS[1]!.name}.`)
    // Nothing of the connection outlives the flow in the browser's storage, least of all the token.
    const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }))
    expect(storage).not.toContain('tiktok_connection')
    expect(storage).not.toContain((await demoRow()).access_token as string)
    await page.screenshot({ path: join(ARTIFACTS, 'profile-connected.png') })

    expect(await demoRow()).toMatchObject({ advertiser_id: DEMO_ADVERTISERS[1]!.id, advertiser_name: DEMO_ADVERTISERS[1]!.name })
    expect((await demoRow()).access_token).toMatch(/^[0-9a-f]{40}$/)
    expect(exchangeCalls()).toBe(1)

    // Nothing the callback page asked for left the product's origin.
    expect(seen.length).toBeGreaterThanOrEqual(4)
    for (const url of seen) expect(new URL(url).origin).toBe(primary)
  })

  it('on both demo domains (localhost, 127.0.0.1) over plain http Chromium stores the __Host- binding cookie, sends it to /exchange, and each round trip returns to its own domain', async () => {
    expect(new URL(primary).hostname).toBe('localhost')
    expect(new URL(secondary).hostname).toBe('127.0.0.1')
    const values: string[] = []
    for (const [origin, advertiser] of [
      [primary, DEMO_ADVERTISERS[0]!],
      [secondary, DEMO_ADVERTISERS[1]!],
    ] as const) {
      await openTikTok(origin)
      const value = await bindingCookie(origin)
      values.push(value)

      const exchange = page.waitForRequest((request) => request.url() === `${origin}/api/tiktok/oauth/exchange`)
      await page.click('#authorize')
      const sent = (await (await exchange).allHeaders()).cookie ?? ''
      expect(sent.split(/;\s*/)).toContain(`${BINDING_COOKIE}=${value}`)
      await page.waitForSelector('body[data-outcome="choose"]')
      expect(page.url()).toBe(`${origin}/oauth/callback`)
      await page.click(`button.choice[data-id="${advertiser.id}"]`)
      await page.waitForURL(`${origin}/profile`)
      await page.waitForSelector('body[data-connected="yes"]')
      expect(await page.textContent('#status')).toContain(advertiser.name)
      expect((await demoRow()).advertiser_id).toBe(advertiser.id)
      // HttpOnly: the product page's script cannot read it.
      expect(await page.evaluate(() => document.cookie)).not.toContain(BINDING_COOKIE)
    }
    // One cookie per host, each from its own /start: neither domain's cookie reaches the other.
    expect(await bindingCookie(primary)).toBe(values[0])
    expect(await bindingCookie(secondary)).toBe(values[1])
    expect(values[0]).not.toBe(values[1])
    expect(exchangeCalls()).toBe(2)
  })

  it('the password goes where this run of npm run dev says its sandbox is (/__dev/sandbox.json), whatever a link says', async () => {
    const nonLoopback = `http://${NON_LOOPBACK_HOST}:${WORKER_PORT}`
    const settings = await (await fetch(`${primary}/__dev/sandbox.json`)).json()
    expect(settings).toEqual({
      sandbox: stack.sandboxOrigin,
      supabase_url: `${stack.sandboxOrigin}/supabase`,
      demo_user: { email: DEMO_USER.email, password: DEMO_USER.password },
    })
    for (const origin of [nonLoopback, primary]) {
      // The query parameter earlier versions took is ignored.
      await page.goto(`${origin}/profile?supabase=${encodeURIComponent('http://evil.example/supabase')}`)
      const signIn = page.waitForRequest((request) => request.url().includes('/auth/v1/token'))
      await page.click('#sign-in-button')
      expect(new URL((await signIn).url()).origin).toBe(stack.sandboxOrigin)
      await page.waitForSelector('body[data-state="not-connected"]')
      await page.click('#sign-out')
    }
  })

  it('the product page shows the status and disconnects: revoked at TikTok, row cleared', async () => {
    await openTikTok(primary)
    await page.click('#authorize')
    await page.waitForSelector('body[data-outcome="choose"]')
    const token = (await demoRow()).access_token as string
    await page.goto(`${primary}/profile${FULL_PAGE}`)
    await page.waitForSelector('body[data-connected="yes"]')
    await page.click('#disconnect')
    await page.click('#confirm-yes')
    await page.waitForSelector('body[data-connected="no"]')
    expect(await page.textContent('#status')).toBe('TikTok is disconnected, and its access is revoked.')
    expect((await demoRow()).access_token).toBeNull()
    expect(stack.sandbox.tiktok.tokenIsLive(token)).toBe(false)
  })

  it('deny at TikTok: a clear page, no exchange, nothing written', async () => {
    await openTikTok(primary)
    const callback = await decide('deny')
    expect(new URL(callback).searchParams.has('auth_code')).toBe(false)
    const shown = await runCallback(callback)
    expect(shown).toMatchObject({ outcome: 'denied', title: 'TikTok was not connected' })
    expect(shown.message).toMatch(/cancelled or denied/)
    await page.screenshot({ path: join(ARTIFACTS, 'callback-denied.png') })
    expect(exchangeCalls()).toBe(0)
    expect((await demoRow()).access_token).toBeNull()
  })

  it('reloading the callback page after success shows the outcome again without a second exchange', async () => {
    await openTikTok(primary)
    const callback = await decide('authorize')
    await runCallback(callback)
    expect(exchangeCalls()).toBe(1)
    await page.reload()
    await page.waitForSelector('body[data-outcome]')
    expect(await page.getAttribute('body', 'data-outcome')).toBe('choose')
    expect(await page.textContent('#title')).toBe('Choose an advertiser account')
    expect(exchangeCalls()).toBe(1)
  })

  it("the callback page sends TikTok's `code` when `auth_code` is absent, clears the address bar, and renders no query value as markup", async () => {
    await openTikTok(primary)
    const callback = new URL(await decide('authorize'))
    const code = callback.searchParams.get('auth_code')!
    callback.searchParams.delete('auth_code')
    callback.searchParams.set('code', code)
    // Markup in every place a careless page might echo it.
    const markup = '<img src=x id=injected onerror="document.title=\'pwned\'">'
    callback.searchParams.set('error_description', markup)
    callback.hash = encodeURIComponent(markup)
    const sent = page.waitForRequest((r) => r.url() === `${primary}/api/tiktok/oauth/exchange`)
    const shown = await runCallback(callback.toString())
    expect(JSON.parse((await sent).postData()!)).toEqual({ auth_code: code, state: callback.searchParams.get('state') })
    expect(shown.outcome).toBe('choose')
    expect(new URL(page.url()).search).toBe('')
    expect(await page.locator('#injected, img').count()).toBe(0)
    expect(await page.title()).not.toBe('pwned')
    expect(await page.content()).not.toContain('onerror')
  })

  it('a tampered state in the callback URL is refused before TikTok is called', async () => {
    await openTikTok(primary)
    const callback = new URL(await decide('authorize'))
    const state = callback.searchParams.get('state')!
    callback.searchParams.set('state', state.slice(0, -2) + (state.endsWith('AA') ? 'BB' : 'AA'))
    const shown = await runCallback(callback.toString())
    expect(shown).toMatchObject({ outcome: 'invalid_state', title: 'This link is not valid' })
    await page.screenshot({ path: join(ARTIFACTS, 'callback-invalid-state.png') })
    expect(exchangeCalls()).toBe(0)
    expect((await demoRow()).access_token).toBeNull()
  })

  it('an expired state says so and asks to start again', async () => {
    await openTikTok(primary)
    const callback = new URL(await decide('authorize'))
    callback.searchParams.set('state', expiredState(stack.vars.STATE_SECRET!, primary))
    const shown = await runCallback(callback.toString())
    expect(shown).toMatchObject({ outcome: 'state_expired', title: 'This authorization expired' })
    expect(shown.message).toMatch(/Start the connection again/)
    expect(exchangeCalls()).toBe(0)
  })

  it('a callback opened in another browser (no binding cookie) is refused', async () => {
    await openTikTok(primary)
    const callback = await decide('authorize')
    const other = await browser.newContext()
    const otherPage = await other.newPage()
    await otherPage.goto(callback)
    await otherPage.waitForSelector('body[data-outcome]')
    expect(await otherPage.getAttribute('body', 'data-outcome')).toBe('state_not_bound')
    await other.close()
    expect(exchangeCalls()).toBe(0)
  })
})
