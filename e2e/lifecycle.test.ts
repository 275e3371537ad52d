// Issue 10 in a browser: the connection after it is made. The sandbox's TikTok plays the advertiser
// who removes the app, its receiver plays the product's webhook endpoint.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { Webhook } from 'standardwebhooks'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import type { Delivery } from '../sandbox/types.ts'
import { type Stack, startStack } from '../scripts/stack.ts'
import { ARTIFACTS, launchBrowser } from './browser.ts'

// Apart from `npm run dev`'s ports and roundtrip.test.ts's.
const WORKER_PORT = 8878
const SANDBOX_PORT = 8891
/** A queue hop under wrangler dev takes about a second (the batch timeout); retries add their delays. */
const DELIVERY_WAIT_MS = 20_000

let stack: Stack
let browser: Browser
let context: BrowserContext
let page: Page
let primary: string
/** Measurements for the closing note, written to test-artifacts/ when the tests that take them run. */
const timings: Record<string, unknown> = {}

beforeAll(async () => {
  stack = await startStack({ workerPort: WORKER_PORT, sandboxPort: SANDBOX_PORT, useDevVars: false, quiet: true, raisedLimits: true })
  primary = stack.vars.ALLOWED_ORIGINS!.split(',')[0]!
  browser = await launchBrowser()
})

afterAll(async () => {
  if (Object.keys(timings).length) writeFileSync(join(ARTIFACTS, 'lifecycle-timings.json'), `${JSON.stringify(timings, null, 2)}\n`)
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

const demoRow = async () => (await stack.sandbox.supabase.row(DEMO_USER.id))!
/** The demo profile opens TikTok in a popup by default; these tests take the full-page flow. */
const FULL_PAGE = '?mode=redirect'

const deliveries = async (): Promise<Delivery[]> =>
  ((await (await fetch(`${stack.sandboxOrigin}/webhooks.json`)).json()) as { deliveries: Delivery[] }).deliveries
const payloadOf = (d: Delivery) => d.payload as Record<string, unknown>

/** Polls the receiver until `check` passes: the Worker delivers from a queue, a second or more later. */
const untilDelivered = <T>(check: (seen: Delivery[]) => T, timeout = DELIVERY_WAIT_MS) =>
  vi.waitFor(async () => check(await deliveries()), { timeout, interval: 100 })

/** The one delivery of `type` that the receiver accepted; fails while there is none. */
const accepted = (type: string) => (seen: Delivery[]) => {
  const found = seen.filter((d) => d.type === `tiktok.connection.${type}` && d.status === 204)
  expect(
    found.map((d) => d.type),
    `accepted ${type} deliveries, of ${JSON.stringify(seen.map((d) => [d.type, d.status]))}`,
  ).toHaveLength(1)
  return found[0]!
}

/**
 * Sign in, Connect, Authorize at TikTok, keep the first advertiser (already the chosen one, so no
 * advertiser_changed event): back on the profile, connected. Answers when the exchange answered.
 */
async function connect(): Promise<number> {
  await page.goto(`${primary}/profile${FULL_PAGE}`)
  if (await page.isVisible('#sign-in-button')) await page.click('#sign-in-button')
  await page.waitForSelector('#connect:visible')
  await page.click('#connect')
  await page.waitForURL(`${stack.sandboxOrigin}/tiktok/portal/auth?**`)
  const exchange = page.waitForResponse((response) => response.url() === `${primary}/api/tiktok/oauth/exchange`)
  await page.click('#authorize')
  const answer = await exchange
  const answeredAt = Date.now()
  expect(answer.status(), `exchange: ${answer.ok() ? '' : await answer.text()}`).toBe(200)
  await page.waitForSelector('body[data-outcome="choose"]')
  await page.click(`button.choice[data-id="${DEMO_ADVERTISERS[0]!.id}"]`)
  await page.waitForURL(`${primary}/profile`)
  await page.waitForSelector('body[data-connected="yes"]')
  return answeredAt
}

/** The advertiser removes the app on the sandbox's TikTok page (it lists the one live grant). */
async function revokeAtTikTok(name: string) {
  const tiktok = await context.newPage()
  await tiktok.goto(`${stack.sandboxOrigin}/`)
  expect(await tiktok.locator('#grants tr[data-grant]').count()).toBe(1)
  await tiktok.screenshot({ path: join(ARTIFACTS, `${name}-tiktok-grants.png`), fullPage: true })
  await tiktok.click('#grants button.revoke')
  await tiktok.waitForSelector('#no-grants')
  await tiktok.close()
}

/** What the Cron Trigger would do every 15 minutes; wrangler dev fires it only on request. */
async function runSweep() {
  const response = await fetch(`${stack.workerOrigin}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent('*/15 * * * *')}`)
  expect(response.status, await response.clone().text()).toBe(200)
}

/**
 * The profile, reloaded until it shows `reason`: whether the sweep's write lands before the cron
 * request answers is the Worker's business (it may finish under waitUntil).
 */
async function profileShows(reason: 'revoked' | '') {
  await vi.waitFor(
    async () => {
      await page.goto(`${primary}/profile`)
      await page.waitForSelector('body[data-connected]')
      expect(await page.getAttribute('body', 'data-reason'), 'data-reason on the profile').toBe(reason)
    },
    { timeout: 10_000, interval: 250 },
  )
}

describe('sandbox side', () => {
  it('the receiver verifies with the secret the Worker is configured with, on the rewritten port, and its page reads at 390 px and 1280 px', async () => {
    // localConfig moved dev.env's 8790 to this run's sandbox port, for the Worker and the receiver alike.
    expect(stack.vars.WEBHOOK_URL).toBe(`${stack.sandboxOrigin}/webhooks`)
    const send = (body: string, secret: string) => {
      const id = `msg_${crypto.randomUUID()}`
      const now = new Date()
      return fetch(stack.vars.WEBHOOK_URL!, {
        method: 'POST',
        headers: {
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': new Webhook(secret).sign(id, now, body),
        },
        body,
      })
    }
    const event = (type: string) =>
      JSON.stringify({ id: crypto.randomUUID(), type: `tiktok.connection.${type}`, advertiser: DEMO_ADVERTISERS[0], advertisers: DEMO_ADVERTISERS })
    expect((await send(event('connected'), stack.vars.WEBHOOK_SECRET!)).status).toBe(204)
    expect((await send(event('revoked'), `whsec_${Buffer.alloc(32, 7).toString('base64')}`)).status).toBe(400)
    expect((await deliveries()).map((d) => [d.type, d.valid])).toEqual([
      ['tiktok.connection.connected', true],
      ['tiktok.connection.revoked', false],
    ])

    for (const [width, isMobile] of [
      [390, true],
      [1280, false],
    ] as const) {
      const viewer = await browser.newContext({ viewport: { width, height: 800 }, isMobile })
      const receiver = await viewer.newPage()
      await receiver.goto(`${stack.sandboxOrigin}/webhooks`)
      await receiver.locator('#deliveries details').first().click()
      // On a phone the layout width is the device's only when the page declares a viewport.
      expect(await receiver.evaluate(() => window.innerWidth)).toBe(width)
      expect(await receiver.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)).toBeLessThanOrEqual(0)
      expect(await receiver.locator('#deliveries tbody[data-valid]').count()).toBe(2)
      await receiver.screenshot({ path: join(ARTIFACTS, `webhooks-${width}.png`), fullPage: true })
      await viewer.close()
    }
  })

  it("revoke at the sandbox's TikTok page: the Worker does not know until it asks; after ?verify=true the profile says access was removed, and Reconnect connects again", async () => {
    await connect()
    const token = (await demoRow()).access_token as string
    await revokeAtTikTok('verify')
    expect(stack.sandbox.tiktok.tokenIsLive(token)).toBe(false)

    // Nothing tells the Worker (TikTok sends no event): the stored connection still looks live.
    await profileShows('')
    expect(await page.getAttribute('body', 'data-connected')).toBe('yes')

    const verified = await page.evaluate(async () => {
      const { accessToken } = JSON.parse(sessionStorage.getItem('demo_supabase_session')!)
      const response = await fetch('/api/tiktok/connection?verify=true', { headers: { authorization: `Bearer ${accessToken}` } })
      return response.json()
    })
    expect(verified).toMatchObject({ connected: false, reason: 'revoked' })

    await profileShows('revoked')
    expect(await page.textContent('#status')).toBe(`TikTok access to ${DEMO_ADVERTISERS[0]!.name} was removed. Reconnect to use it again.`)
    expect(await page.textContent('#connect')).toBe('Reconnect')
    expect(await page.isVisible('#disconnect')).toBe(false)
    await page.screenshot({ path: join(ARTIFACTS, 'profile-revoked.png') })

    await connect()
    expect(await page.getAttribute('body', 'data-reason')).toBe('')
    const row = await demoRow()
    expect(row.revoked_at).toBeNull()
    expect(row.access_token).not.toBe(token)
    expect(stack.sandbox.tiktok.tokenIsLive(row.access_token as string)).toBe(true)
  })
})

// These need the Worker side of issue 10: the events outbox delivered by the queue consumer to
// WEBHOOK_URL, and the scheduled() sweep.
describe('lifecycle events end to end', () => {
  it('connect → a valid connected event; revoke at TikTok → sweep → the profile shows it and a valid revoked event; reconnect → connected with reconnected: true', async () => {
    const answeredAt = await connect()
    const connected = await untilDelivered(accepted('connected'))
    const delayMs = Date.parse(connected.received_at) - answeredAt
    timings.exchange_answer_to_delivery_ms = delayMs
    console.log(`lifecycle: exchange answered → connected event at the receiver: ${delayMs} ms`)
    const token = (await demoRow()).access_token as string
    expect(connected).toMatchObject({ valid: true, attempt: 1 })
    expect(payloadOf(connected)).toMatchObject({
      id: connected.id,
      type: 'tiktok.connection.connected',
      user_id: DEMO_USER.id,
      advertiser: DEMO_ADVERTISERS[0],
      reconnected: false,
    })
    expect(JSON.stringify(connected.payload)).not.toContain(token)

    await revokeAtTikTok('sweep')
    await runSweep()
    await profileShows('revoked')
    expect(await page.textContent('#status')).toMatch(/^TikTok access to .+ was removed\. Reconnect to use it again\.$/)
    await page.screenshot({ path: join(ARTIFACTS, 'profile-revoked-by-sweep.png') })
    const revoked = await untilDelivered(accepted('revoked'))
    expect(revoked).toMatchObject({ valid: true, attempt: 1 })
    expect(payloadOf(revoked)).toMatchObject({ user_id: DEMO_USER.id, advertiser: DEMO_ADVERTISERS[0], detected_by: 'sweep', code: 40105 })

    // Reconnect from the revoked profile.
    expect(await page.textContent('#connect')).toBe('Reconnect')
    await connect()
    const again = await untilDelivered((seen) => {
      const found = seen.filter((d) => d.type === 'tiktok.connection.connected' && d.status === 204)
      expect(found).toHaveLength(2)
      return found[1]!
    })
    expect(again.valid).toBe(true)
    expect(again.id).not.toBe(connected.id)
    expect(payloadOf(again)).toMatchObject({ reconnected: true, advertiser: DEMO_ADVERTISERS[0] })
    // Every delivery verified, none failed: no retries on the happy path.
    expect((await deliveries()).map((d) => [d.type, d.valid, d.attempt, d.status])).toEqual([
      ['tiktok.connection.connected', true, 1, 204],
      ['tiktok.connection.revoked', true, 1, 204],
      ['tiktok.connection.connected', true, 1, 204],
    ])
    await page.goto(`${stack.sandboxOrigin}/webhooks`)
    await page.screenshot({ path: join(ARTIFACTS, 'webhooks-lifecycle.png'), fullPage: true })
  })

  it('the advertiser takes the chosen account out of the grant → sweep → advertiser_changed (advertiser_removed)', async () => {
    await connect()
    await untilDelivered(accepted('connected'))
    const removed = await fetch(`${stack.sandboxOrigin}/__sandbox/tiktok/remove-advertiser`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ advertiser_id: DEMO_ADVERTISERS[0]!.id }),
    })
    expect(await removed.json()).toEqual({ changed: 1 })
    await runSweep()
    const changed = await untilDelivered(accepted('advertiser_changed'))
    expect(changed.valid).toBe(true)
    expect(payloadOf(changed)).toMatchObject({ reason: 'advertiser_removed' })
    expect((payloadOf(changed).advertisers as { id: string }[]).map((a) => a.id)).toEqual([DEMO_ADVERTISERS[1]!.id])
  })

  it('a receiver that fails 3 times: the same event (same webhook-id, each signed) is retried until accepted, then marked delivered', {
    timeout: 240_000,
  }, async () => {
    const scripted = await fetch(`${stack.sandboxOrigin}/__sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ target: 'webhook', fault: { status: 500 }, times: 3 }),
    })
    expect(scripted.status).toBe(200)
    const answeredAt = await connect()
    await untilDelivered((all) => expect(all.length, 'deliveries of the connected event').toBeGreaterThan(0))
    // The Worker's back-off decides how long the retries take; the bound is generous on purpose.
    const seen = await untilDelivered((all) => {
      expect(
        all.map((d) => d.status),
        'answers so far',
      ).toContain(204)
      return all
    }, 180_000)
    const ids = new Set(seen.map((d) => d.id))
    expect(ids.size).toBe(1)
    expect(seen.map((d) => [d.attempt, d.valid, d.status])).toEqual([
      [1, true, 500],
      [2, true, 500],
      [3, true, 500],
      [4, true, 204],
    ])
    timings.receiver_failing_3_times = {
      attempts: seen.length,
      arrivals_after_exchange_answer_ms: seen.map((d) => Date.parse(d.received_at) - answeredAt),
    }
    console.log(`lifecycle: receiver failing 3 times → ${JSON.stringify(timings.receiver_failing_3_times)}`)
    const [event] = await vi.waitFor(
      async () => {
        const rows = await stack.sandbox.supabase.database.rows<{ delivered_at: string | null; attempts: number }>(
          'select delivered_at, attempts from public.tiktok_connection_events where id = $1',
          [[...ids][0]],
        )
        expect(rows[0]?.delivered_at).not.toBeNull()
        return rows
      },
      { timeout: 10_000, interval: 100 },
    )
    expect(event!.attempts).toBe(4)
  })
})
