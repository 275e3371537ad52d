// Issue 11, the sandbox's own pages: readable at desktop and phone widths, no serious or critical
// axe-core violation, nothing wider than the window; and /favicon.ico on both servers.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import { ROOT, type Stack, startStack } from '../scripts/stack.ts'
import { ARTIFACTS, launchBrowser } from './browser.ts'

// Apart from `npm run dev`'s ports and the other e2e files'.
const WORKER_PORT = 8880
const SANDBOX_PORT = 8893
const AXE = join(ROOT, 'node_modules/axe-core/axe.min.js')
// A phone lays the page out at its own width only when the page declares a viewport: isMobile checks that too.
const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 800, isMobile: false },
  { name: 'mobile', width: 390, height: 844, isMobile: true },
] as const

type AxeViolation = { id: string; impact: string | null; help: string; nodes: { target: unknown[]; failureSummary?: string }[] }

let stack: Stack
let browser: Browser
let authorizeUrl: string
/** Per page and viewport: every violation's id and impact, for the closing note. */
const results: Record<string, { violations: { id: string; impact: string | null; nodes: number }[]; scrollWidth: number; innerWidth: number }> = {}

/**
 * One connection made as the product page would make it, over HTTP: sign in at the sandbox's
 * Supabase, /start on the Worker, Authorize at the sandbox's TikTok, /exchange with the binding
 * cookie. Every sandbox page then has something to show: a grant, a row, a delivered event.
 */
async function connect(): Promise<void> {
  const origin = `http://127.0.0.1:${WORKER_PORT}`
  const signIn = await fetch(`${stack.sandboxOrigin}/supabase/auth/v1/token?grant_type=password`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: DEMO_USER.email, password: DEMO_USER.password }),
  })
  const { access_token } = (await signIn.json()) as { access_token: string }
  const start = await fetch(`${origin}/api/tiktok/oauth/start`, {
    method: 'POST',
    headers: { authorization: `Bearer ${access_token}`, origin, 'content-type': 'application/json' },
    body: JSON.stringify({ return_to: '/profile' }),
  })
  expect(start.status, await start.clone().text()).toBe(200)
  authorizeUrl = ((await start.json()) as { authorize_url: string }).authorize_url
  const cookie = start.headers.getSetCookie()[0]!.split(';')[0]!
  const authorize = new URL(authorizeUrl)
  const decision = await fetch(`${stack.sandboxOrigin}/tiktok/portal/auth/decision`, {
    method: 'POST',
    body: new URLSearchParams({
      app_id: authorize.searchParams.get('app_id')!,
      redirect_uri: authorize.searchParams.get('redirect_uri')!,
      state: authorize.searchParams.get('state')!,
      decision: 'authorize',
    }),
    redirect: 'manual',
  })
  const callback = new URL(decision.headers.get('location')!)
  const exchange = await fetch(`${origin}/api/tiktok/oauth/exchange`, {
    method: 'POST',
    headers: { cookie, origin, 'content-type': 'application/json' },
    body: JSON.stringify({ auth_code: callback.searchParams.get('auth_code'), state: callback.searchParams.get('state') }),
  })
  expect(exchange.status, await exchange.clone().text()).toBe(200)
  // The connected event reaches the receiver from the Worker's queue, a second or so later.
  await vi.waitFor(
    async () => {
      const { deliveries } = (await (await fetch(`${stack.sandboxOrigin}/webhooks.json`)).json()) as { deliveries: unknown[] }
      expect(deliveries.length).toBeGreaterThan(0)
    },
    { timeout: 20_000, interval: 200 },
  )
}

beforeAll(async () => {
  stack = await startStack({ workerPort: WORKER_PORT, sandboxPort: SANDBOX_PORT, useDevVars: false, quiet: true, raisedLimits: true })
  browser = await launchBrowser()
  await connect()
})

afterAll(async () => {
  if (Object.keys(results).length) writeFileSync(join(ARTIFACTS, 'sandbox-pages-axe.json'), `${JSON.stringify(results, null, 2)}\n`)
  await browser?.close()
  await stack?.stop()
})

/** axe-core's full run on the page as it is, and its widths; recorded for the closing note. */
async function audit(page: Page, key: string): Promise<{ violations: AxeViolation[]; scrollWidth: number; innerWidth: number }> {
  await page.addScriptTag({ path: AXE })
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: () => Promise<{ violations: AxeViolation[] }> } }).axe
    return (await axe.run()).violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }))
  })
  const widths = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth }))
  results[key] = { violations: violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length })), ...widths }
  return { violations, ...widths }
}

const pages = [
  { name: 'root', url: () => `${stack.sandboxOrigin}/`, ready: '#grants' },
  { name: 'database', url: () => `${stack.sandboxOrigin}/supabase/`, ready: '#connections .card' },
  { name: 'tiktok-authorize', url: () => authorizeUrl, ready: '#authorize' },
  { name: 'webhooks', url: () => `${stack.sandboxOrigin}/webhooks`, ready: '#deliveries' },
] as const

describe('sandbox pages at 1280×800 and 390×844', () => {
  for (const viewport of VIEWPORTS) {
    for (const target of pages) {
      it(`${target.name}, ${viewport.name}: no serious or critical axe violation, no horizontal overflow`, async () => {
        const context = await browser.newContext({
          viewport: { width: viewport.width, height: viewport.height },
          isMobile: viewport.isMobile,
          hasTouch: viewport.isMobile,
        })
        const page = await context.newPage()
        try {
          await page.goto(target.url())
          await page.waitForSelector(target.ready)
          // Open the payloads, so their text is checked and pictured too.
          for (const details of await page.locator('details').all()) await details.evaluate((d) => d.setAttribute('open', ''))
          const key = `${target.name}-${viewport.name}`
          const { violations, scrollWidth, innerWidth } = await audit(page, key)
          await page.screenshot({ path: join(ARTIFACTS, `sandbox-${key}.png`), fullPage: true })
          expect(innerWidth).toBe(viewport.width)
          expect(scrollWidth, `${key}: wider than the window`).toBeLessThanOrEqual(innerWidth)
          expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([])
        } finally {
          await context.close()
        }
      })
    }
  }

  it('the database page lists advertisers as "name — id", not JSON', async () => {
    const html = await (await fetch(`${stack.sandboxOrigin}/supabase/`)).text()
    for (const a of DEMO_ADVERTISERS) expect(html).toContain(`${a.name} — <code>${a.id}</code>`)
    expect(html).not.toContain('[{')
    expect(html).not.toContain('&quot;id&quot;')
  })
})

describe('/favicon.ico', () => {
  it('answers 200 with an icon on the Worker and on the sandbox', async () => {
    for (const url of [`http://127.0.0.1:${WORKER_PORT}/favicon.ico`, `${stack.sandboxOrigin}/favicon.ico`]) {
      const res = await fetch(url)
      expect(res.status, url).toBe(200)
      expect(res.headers.get('content-type'), url).toMatch(/^image\//)
      expect((await res.arrayBuffer()).byteLength, url).toBeGreaterThan(0)
    }
  })
})
