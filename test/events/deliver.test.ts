import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from 'cloudflare:test'
import { Webhook } from 'standardwebhooks'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import worker from '../../src/index'
import {
  ADVERTISERS,
  BIG_ID,
  type Bindings,
  connect,
  type EventRow,
  fakeQueue,
  type Harness,
  harness,
  expectNoLeaks,
  testEnv,
  USER_ID,
  WEBHOOK_SECRET,
  WEBHOOK_URL,
} from '../harness'

/**
 * The EVENTS consumer, called as the runtime calls it (platform-facts: the live queue in vitest
 * takes a second per hop, so the handler is called directly). Every delivery is checked with the
 * reference Standard Webhooks library, never with this Worker's own code.
 */
let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  const signatures = h.receiver.deliveries.map((d) => d.headers['webhook-signature']!.slice(3))
  await expectNoLeaks(h, [WEBHOOK_URL, ...signatures])
})

const EVENTS_QUEUE = 'tiktok-connection-events'
const DEAD_LETTER_QUEUE = 'tiktok-connection-events-dlq'
const deliveryEnv = (extra: Bindings = {}) =>
  ({ ...testEnv, WEBHOOK_URL, WEBHOOK_SECRET, EVENTS: fakeQueue().binding, ...extra }) as unknown as Parameters<typeof worker.queue>[1]
const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, any>)

/** Runs one batch through the consumer; `delays` are the delaySeconds it passed to retry(), in order. */
async function consume(bodies: unknown[], options: { attempts?: number; queue?: string; env?: Bindings } = {}) {
  const batch = createMessageBatch(
    options.queue ?? EVENTS_QUEUE,
    bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: options.attempts ?? 1, body })),
  )
  const delays: (number | undefined)[] = []
  for (const message of batch.messages) {
    const retry = message.retry.bind(message)
    // getQueueResult drops the options: the delay is seen here, on its way to the runtime.
    ;(message as { retry: typeof retry }).retry = (o) => {
      delays.push(o?.delaySeconds)
      retry(o)
    }
  }
  const ctx = createExecutionContext()
  await worker.queue(batch, deliveryEnv(options.env), ctx)
  await waitOnExecutionContext(ctx)
  return { result: await getQueueResult(batch, ctx), delays }
}

/** A connection's `connected` event, written by the real completion. */
async function connectedEvent(): Promise<EventRow> {
  expect((await connect(h)).status).toBe(200)
  return (await h.events()).at(-1)!
}

const stored = async (id: string) => (await h.sql('select * from public.tiktok_connection_events where id = $1', [id]))[0] as EventRow

describe('a delivery', () => {
  it('is a POST of the stored payload, signed as Standard Webhooks v1 (verified by the reference library), then marked delivered', async () => {
    const event = await connectedEvent()
    const { result, delays } = await consume([{ event_id: event.id }])
    expect(result.explicitAcks).toEqual(['m0'])
    expect(result.retryMessages).toEqual([])
    expect(delays).toEqual([])

    const [delivery] = h.receiver.deliveries
    expect(delivery).toMatchObject({ url: WEBHOOK_URL, method: 'POST', redirect: 'manual' })
    expect(delivery!.headers['content-type']).toBe('application/json')
    expect(delivery!.headers['webhook-id']).toBe(event.id)
    expect(Number(delivery!.headers['webhook-timestamp'])).toBeCloseTo(Date.now() / 1000, -1)
    expect(delivery!.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/)
    const verified = new Webhook(WEBHOOK_SECRET).verify(delivery!.body, delivery!.headers)
    expect(verified).toEqual(event.payload)
    expect(verified).toMatchObject({ id: event.id, type: 'tiktok.connection.connected', user_id: USER_ID, advertisers: ADVERTISERS })
    // Ids beyond 2^53 travel as the exact strings stored.
    expect(delivery!.body).toContain(`"advertiser":{"id":"${BIG_ID}",`)
    // The reference library does check: another secret, another body or an old timestamp fail.
    expect(() => new Webhook(`whsec_${btoa('x'.repeat(32))}`).verify(delivery!.body, delivery!.headers)).toThrow()
    expect(() => new Webhook(WEBHOOK_SECRET).verify(delivery!.body.replace(BIG_ID, '7012345678901234568'), delivery!.headers)).toThrow()
    expect(() =>
      new Webhook(WEBHOOK_SECRET).verify(delivery!.body, { ...delivery!.headers, 'webhook-timestamp': String(Math.floor(Date.now() / 1000) - 3600) }),
    ).toThrow()

    expect(await stored(event.id)).toMatchObject({ attempts: 1, last_error: null, delivered_at: expect.any(String) })
    expect(lines().find((l) => l.event === 'events.deliver')).toMatchObject({ outcome: 'delivered', event_id: event.id, http_status: 204 })
  })

  it('of an event delivered meanwhile (a twin message) sends nothing and acknowledges', async () => {
    const event = await connectedEvent()
    await consume([{ event_id: event.id }])
    const again = await consume([{ event_id: event.id }])
    expect(again.result.explicitAcks).toEqual(['m0'])
    expect(h.receiver.deliveries).toHaveLength(1)
  })

  it('keeps webhook-id on every attempt; each attempt is signed afresh', async () => {
    const event = await connectedEvent()
    h.receiver.fail({ status: 500 })
    await consume([{ event_id: event.id }])
    await consume([{ event_id: event.id }], { attempts: 2 })
    const [first, second] = h.receiver.deliveries
    expect(first!.headers['webhook-id']).toBe(event.id)
    expect(second!.headers['webhook-id']).toBe(event.id)
    expect(first!.body).toBe(second!.body)
    for (const d of [first!, second!]) expect(new Webhook(WEBHOOK_SECRET).verify(d.body, d.headers)).toEqual(event.payload)
  })

  it('without WEBHOOK_URL: acknowledged, nothing sent or read, the event stays undelivered in the table', async () => {
    const event = await connectedEvent()
    h.supabase.requests.length = 0
    const { result } = await consume([{ event_id: event.id }], { env: { WEBHOOK_URL: '', WEBHOOK_SECRET: '' } })
    expect(result.ackAll).toBe(true)
    expect(h.receiver.deliveries).toEqual([])
    expect(h.supabaseCalls()).toEqual([])
    expect(await stored(event.id)).toMatchObject({ delivered_at: null, attempts: 0 })
  })

  it('a message that names no event is acknowledged and logged, not retried', async () => {
    const { result } = await consume([{ event_id: 'not-a-uuid' }, 'garbage', null])
    expect(result.explicitAcks).toEqual(['m0', 'm1', 'm2'])
    expect(lines().filter((l) => l.outcome === 'malformed_message')).toHaveLength(3)
    expect(h.receiver.deliveries).toEqual([])
  })
})

describe('a failed delivery', () => {
  it('waits EVENTS_RETRY_SECONDS before its first retry, doubling after (the sandbox sets 1)', async () => {
    const event = await connectedEvent()
    h.receiver.fail({ status: 500 }, 3)
    const delays: (number | undefined)[] = []
    for (let attempt = 1; attempt <= 3; attempt++)
      delays.push(...(await consume([{ event_id: event.id }], { attempts: attempt, env: { EVENTS_RETRY_SECONDS: '1' } })).delays)
    expect(delays).toEqual([1, 2, 4])
  })

  it('is counted and retried with a growing delay; after max_retries the runtime dead-letters it', async () => {
    const event = await connectedEvent()
    h.receiver.fail({ status: 500 }, 6)
    const delays: (number | undefined)[] = []
    // wrangler.toml: max_retries = 5, so the queue makes six attempts.
    for (let attempt = 1; attempt <= 6; attempt++) {
      const run = await consume([{ event_id: event.id }], { attempts: attempt })
      expect(run.result.retryMessages).toEqual([{ msgId: 'm0' }])
      expect(run.result.explicitAcks).toEqual([])
      delays.push(...run.delays)
    }
    expect(delays).toEqual([30, 60, 120, 240, 480, 900])
    expect(await stored(event.id)).toMatchObject({ attempts: 6, last_error: 'http_500', delivered_at: null })
    expect(
      lines()
        .filter((l) => l.event === 'events.deliver')
        .map((l) => [l.outcome, l.reason, l.attempt]),
    ).toEqual([1, 2, 3, 4, 5, 6].map((n) => ['failed', 'http_500', n]))

    // A later message (the cron's) gets it through.
    const { result } = await consume([{ event_id: event.id }])
    expect(result.explicitAcks).toEqual(['m0'])
    expect(await stored(event.id)).toMatchObject({ attempts: 7, delivered_at: expect.any(String) })
  })

  it('a redirect is a failure and is not followed', async () => {
    const event = await connectedEvent()
    h.receiver.fail({ redirect: 'https://elsewhere.example.net/steal' })
    const { result, delays } = await consume([{ event_id: event.id }])
    expect(result.retryMessages).toEqual([{ msgId: 'm0' }])
    expect(delays).toEqual([30])
    expect(h.receiver.deliveries).toHaveLength(1)
    expect(h.outbound.map((r) => new URL(r.url).host)).not.toContain('elsewhere.example.net')
    expect(await stored(event.id)).toMatchObject({ last_error: 'redirect_302', delivered_at: null })
  })

  it('a receiver that does not answer in time (UPSTREAM_TIMEOUT_MS) is a failure', async () => {
    const event = await connectedEvent()
    h.receiver.fail({ hang: true })
    // A short deadline of its own: this one waits for it on the real clock.
    const { result } = await consume([{ event_id: event.id }], { env: { UPSTREAM_TIMEOUT_MS: '300' } })
    expect(result.retryMessages).toEqual([{ msgId: 'm0' }])
    expect(await stored(event.id)).toMatchObject({ last_error: 'timeout', attempts: 1 })
  })

  it('a receiver that cannot be reached is a failure', async () => {
    const event = await connectedEvent()
    const { result } = await consume([{ event_id: event.id }], { env: { WEBHOOK_URL: 'https://unreachable.example.org/hook' } })
    expect(result.retryMessages).toEqual([{ msgId: 'm0' }])
    expect(await stored(event.id)).toMatchObject({ last_error: 'network_error' })
    expect(h.unexpected).toEqual(['https://unreachable.example.org/hook'])
    h.unexpected.length = 0
  })

  it('a 4xx is a failure too (the receiver may be fixed in time)', async () => {
    const event = await connectedEvent()
    h.receiver.fail({ status: 401 })
    const { delays } = await consume([{ event_id: event.id }], { attempts: 3 })
    expect(delays).toEqual([120])
    expect(await stored(event.id)).toMatchObject({ last_error: 'http_401' })
  })

  it('a database that cannot be read: retried later, nothing sent', async () => {
    const event = await connectedEvent()
    h.supabase.faults.add('rest', { status: 503 }, 2)
    const { result, delays } = await consume([{ event_id: event.id }])
    expect(result.retryMessages).toEqual([{ msgId: 'm0' }])
    expect(delays).toEqual([30])
    expect(h.receiver.deliveries).toEqual([])
  })

  it('each message of a batch is settled on its own', async () => {
    const first = await connectedEvent()
    const second = await connectedEvent()
    h.receiver.fail({ status: 503 })
    const { result } = await consume([{ event_id: first.id }, { event_id: second.id }])
    expect(result.retryMessages).toEqual([{ msgId: 'm0' }])
    expect(result.explicitAcks).toEqual(['m1'])
    expect((await stored(second.id)).delivered_at).not.toBeNull()
  })

  it('settings that do not check out: the whole batch waits, nothing is sent', async () => {
    const event = await connectedEvent()
    const { result } = await consume([{ event_id: event.id }], { env: { WEBHOOK_SECRET: 'whsec_short' } })
    expect(result.retryBatch).toMatchObject({ retry: true })
    expect(h.receiver.deliveries).toEqual([])
    expect(lines().find((l) => l.event === 'config.invalid')).toMatchObject({ settings: [{ name: 'WEBHOOK_SECRET', problem: 'malformed' }] })
  })
})

describe('the dead-letter queue', () => {
  it('logs each message loudly and acknowledges it; the event stays undelivered for the cron', async () => {
    const event = await connectedEvent()
    const { result } = await consume([{ event_id: event.id }], { queue: DEAD_LETTER_QUEUE, attempts: 6 })
    expect(result.explicitAcks).toEqual(['m0'])
    expect(lines().find((l) => l.event === 'events.dead_letter')).toMatchObject({ level: 'error', event_id: event.id, attempts: 6 })
    expect(h.receiver.deliveries).toEqual([])
    expect((await stored(event.id)).delivered_at).toBeNull()
  })
})
