import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DEMO_USER } from '../sandbox/app.ts'
import { type Stack, startStack } from '../scripts/stack.ts'
import { decideAtTikTok, launchBrowser } from './browser.ts'

// Ports apart from `npm run dev`'s and the other e2e files', so any of them can run at once.
const WORKER_PORT = 8878
const SANDBOX_PORT = 8891
// Two sibling hosts under one parent: the product and a page an attacker controls (a forum, a
// customer's subdomain). Under .localhost Chromium resolves both to this machine and treats both as
// secure, so the product's __Host- cookie is stored over plain http, as it would be over https.
const PARENT = 'demo.localhost'
const PRODUCT = `http://app.${PARENT}:${WORKER_PORT}`
const SIBLING = `http://forum.${PARENT}:${WORKER_PORT}`
const ATTACKER = { id: '9b2d7c4e-1f3a-4e5b-8c6d-7e8f9a0b1c2d', email: 'attacker@example.com' }
const COOKIE = '__Host-tiktok_oauth_binding'

let stack: Stack
let browser: Browser
let context: BrowserContext
let page: Page

beforeAll(async () => {
  stack = await startStack({
    workerPort: WORKER_PORT,
    sandboxPort: SANDBOX_PORT,
    useDevVars: false,
    quiet: true,
    raisedLimits: true,
    vars: { ALLOWED_ORIGINS: PRODUCT },
  })
  browser = await launchBrowser([`--host-resolver-rules=MAP *.${PARENT} 127.0.0.1`])
})

afterAll(async () => {
  await browser?.close()
  await stack?.stop()
})

beforeEach(async () => {
  await fetch(`${stack.sandboxOrigin}/__sandbox/reset`, { method: 'POST' })
  await stack.sandbox.supabase.database.rows('insert into auth.users (id, email) values ($1, $2) returning id', [ATTACKER.id, ATTACKER.email])
  context = await browser.newContext()
  page = await context.newPage()
})

const tokenOf = async (id: string) => (await stack.sandbox.supabase.row(id))?.access_token ?? null

/** POST /start as `userId` from a page on the product in `on` (a browser context): the authorize URL. */
async function startIn(on: Page, userId: string): Promise<string> {
  await on.goto(`${PRODUCT}/oauth/popup`)
  const token = await stack.sandbox.supabase.signAccessToken(userId)
  const answer = await on.evaluate(async (bearer) => {
    const res = await fetch('/api/tiktok/oauth/start', { method: 'POST', headers: { authorization: `Bearer ${bearer}` } })
    return { status: res.status, body: (await res.json()) as { authorize_url?: string } }
  }, token)
  expect(answer.status).toBe(200)
  return answer.body.authorize_url!
}

/** The victim authorizes at TikTok on `authorizeUrl`; the callback page posts to /exchange. Its outcome and the Cookie sent. */
async function authorizeAndReturn(authorizeUrl: string) {
  await page.goto(authorizeUrl)
  const callback = await decideAtTikTok(page, stack.sandboxOrigin, 'authorize')
  const exchange = page.waitForRequest((request) => request.url() === `${PRODUCT}/api/tiktok/oauth/exchange`)
  await page.goto(callback)
  const cookie = (await (await exchange).allHeaders()).cookie ?? ''
  await page.waitForSelector('body[data-outcome]')
  return { outcome: await page.getAttribute('body', 'data-outcome'), title: await page.textContent('#title'), cookie }
}

describe('a binding cookie planted from a sibling subdomain under a look-alike name', () => {
  it('neither links the victim’s TikTok grant to the attacker’s account, nor locks the victim out of connecting', async () => {
    // The attacker starts a flow on their own account, and their page on the sibling host plants its
    // cookie in the victim's browser for the whole parent domain, for a year. The __Host- rules do
    // not apply: the name begins with U+00A0.
    const attackersBrowser = await browser.newContext()
    const attackerAuthorizeUrl = await startIn(await attackersBrowser.newPage(), ATTACKER.id)
    const attackerBinding = (await attackersBrowser.cookies(PRODUCT)).find((c) => c.name === COOKIE)!.value
    await attackersBrowser.close()
    await page.goto(`${SIBLING}/oauth/popup`)
    await page.evaluate(
      ([name, value, parent]) => {
        document.cookie = `\u00A0${name}=${value}; Domain=${parent}; Path=/; Max-Age=31536000`
      },
      [COOKIE, attackerBinding, PARENT],
    )
    expect((await context.cookies(PRODUCT)).map((c) => c.name)).toEqual([`\u00A0${COOKIE}`])

    // The victim authorizes at TikTok on the attacker's state (a link the attacker sent).
    const linked = await authorizeAndReturn(attackerAuthorizeUrl)
    // What Chromium sends: the planted name with its no-break space, which the Worker must not strip.
    expect(linked.cookie).toContain(`\u00A0${COOKIE}=${attackerBinding}`)
    expect(linked.outcome).toBe('state_not_bound')
    expect(await tokenOf(ATTACKER.id)).toBeNull()
    expect(stack.output()).toContain('"event":"planted_cookie"')

    // The victim's own flow, with the planted cookie still beside the real one, connects.
    const authorizeUrl = await startIn(page, DEMO_USER.id)
    expect((await context.cookies(PRODUCT)).map((c) => c.name).sort()).toEqual([COOKIE, `\u00A0${COOKIE}`].sort())
    const own = await authorizeAndReturn(authorizeUrl)
    expect(own.outcome).not.toBe('error')
    expect(await tokenOf(DEMO_USER.id)).not.toBeNull()
    expect(await tokenOf(ATTACKER.id)).toBeNull()
  })
})
