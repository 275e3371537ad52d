// Timeouts, retries and polls on a fake clock: nothing here waits for real time to pass.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { REPLAY_POLL_MS, REPLAY_POLLS } from '../../src/routes/oauth'
import { RETRY_DELAY_MS } from '../../src/tiktok'
import { exchange, type Harness, harness, start } from '../harness'

let h: Harness

beforeEach(async () => {
  h = await harness()
})

afterEach(() => {
  vi.useRealTimers()
  expect(h.unexpected).toEqual([])
})

/**
 * Starts on the real clock, then fakes it. Exchanges then pass settings, which runs the Worker in this
 * test's own context: workerd refuses a fake timer, fired from the test, that would resolve another
 * request's promises. Upstream timeouts are 30 s, beyond the test's own time limit, so only the fake
 * clock can reach them.
 */
async function startOnFakeClock() {
  const s = await start(h)
  vi.useFakeTimers()
  return s
}
const SETTINGS = { UPSTREAM_TIMEOUT_MS: '30000' }

/** A request whose answer is awaited later, while the test moves the clock. */
const track = (promise: Promise<Response>) => {
  const tracked = { answer: promise, settled: false }
  promise.then(
    () => (tracked.settled = true),
    () => (tracked.settled = true),
  )
  return tracked
}

/** Lets the Worker run, the fake clock standing still, until `seen()` holds. */
async function until(seen: () => boolean) {
  for (let turn = 0; turn < 500 && !seen(); turn++) await vi.advanceTimersByTimeAsync(0)
  expect(seen()).toBe(true)
}

/** Moves the fake clock in `stepMs` steps until the request has answered. */
async function advanceUntilAnswered(request: ReturnType<typeof track>, stepMs: number) {
  for (let step = 0; step < 100 && !request.settled; step++) await vi.advanceTimersByTimeAsync(stepMs)
  expect(request.settled).toBe(true)
  return request.answer
}

const logsOf = (requestId: unknown, event: string) =>
  h.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.request_id === requestId && l.event === event)

describe('timers on the fake clock', () => {
  it('an upstream that never answers times out at UPSTREAM_TIMEOUT_MS', async () => {
    const s = await startOnFakeClock()
    h.tiktok.faults.add('token', { hang: true })
    const request = track(exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, SETTINGS))
    await until(() => h.tiktokCalls('/access_token/').length === 1)

    await vi.advanceTimersByTimeAsync(29_999)
    expect(request.settled).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    const res = await request.answer
    expect(res.status).toBe(504)
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ code: 'tiktok_unavailable', retryable: true })
    expect(logsOf(body.request_id, 'tiktok.token_exchange')).toMatchObject([{ outcome: 'timeout' }])
  })

  it('a failed advertiser list is asked again only once its backoff has passed', async () => {
    const s = await startOnFakeClock()
    h.tiktok.faults.add('advertisers', { tiktokCode: 50000 })
    const request = track(exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, SETTINGS))
    await until(() => h.logs.some((l) => l.includes('"event":"tiktok.advertisers"') && l.includes('"outcome":"tiktok_error"')))

    await vi.advanceTimersByTimeAsync(RETRY_DELAY_MS - 1)
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    const res = await request.answer
    expect(res.status).toBe(200)
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(2)
  })

  it('a replay whose twin is still completing answers 409 exchange_in_progress after its polls', async () => {
    const s = await startOnFakeClock()
    const input = { state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }
    // The first submission's completion takes 20 s (within its 30 s timeout): its claim stays pending.
    h.supabase.faults.add('rpc', { latencyMs: 20_000 })
    const first = track(exchange(input, SETTINGS))
    await until(() => h.tiktokCalls('/access_token/').length === 1)

    const replay = await advanceUntilAnswered(track(exchange(input, SETTINGS)), REPLAY_POLL_MS)
    expect(replay.status).toBe(409)
    const body = (await replay.json()) as Record<string, unknown>
    expect(body).toMatchObject({ success: false, code: 'exchange_in_progress', retryable: true })
    // The first claim, then every poll, all while the twin held the state.
    expect(logsOf(body.request_id, 'supabase.claim')).toHaveLength(1 + REPLAY_POLLS)
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)

    expect((await advanceUntilAnswered(first, 1000)).status).toBe(200)
  })
})
