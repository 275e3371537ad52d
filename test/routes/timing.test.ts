// Timeouts on a fake clock, retries and polls on the injected sleep: nothing here waits for real time.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { REPLAY_POLL_MS, REPLAY_POLLS } from '../../src/connections'
import { RETRY_DELAY_MS } from '../../src/tiktok'
import { exchange, type Harness, harness, hold, start } from '../harness'

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

const logsOf = (requestId: unknown, event: string) =>
  h.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((l) => l.request_id === requestId && l.event === event)

describe('upstream deadlines on the fake clock', () => {
  it('an upstream that never answers times out at UPSTREAM_TIMEOUT_MS', async () => {
    const s = await startOnFakeClock()
    // Held and never released: TikTok never answers, and the test knows when the call arrived.
    const atTikTok = hold()
    h.tiktok.faults.add('token', atTikTok.fault)
    const request = track(exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, SETTINGS))
    await atTikTok.reached

    await vi.advanceTimersByTimeAsync(29_999)
    expect(request.settled).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    const res = await request.answer
    expect(res.status).toBe(504)
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ code: 'tiktok_unavailable', retryable: true })
    expect(logsOf(body.request_id, 'tiktok.token_exchange')).toMatchObject([{ outcome: 'timeout' }])
  })
})

// Waits between attempts go through the injected clock.sleep (the harness records them and returns
// at once); what a test checks is what was asked for, and when.
describe('waits between attempts', () => {
  it('a failed advertiser list is asked again after a growing backoff, not before', async () => {
    const s = await start(h)
    h.tiktok.faults.add('advertisers', { tiktokCode: 50000 }, 2)
    const asked: [number, number][] = []
    h.sleep.mockImplementation(async (ms: number) => {
      asked.push([ms, h.tiktokCalls('/advertiser/get/').length])
    })
    const res = await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie })
    expect(res.status).toBe(200)
    // [wait asked for, advertiser calls made before it]
    expect(asked).toEqual([
      [RETRY_DELAY_MS, 1],
      [RETRY_DELAY_MS * 2, 2],
    ])
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(3)
  })

  it('a replay whose twin is still completing answers 409 exchange_in_progress after its polls', async () => {
    const s = await start(h)
    const input = { state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }
    // The first submission's completion is held: its claim stays pending while the replay polls.
    const completion = hold()
    h.supabase.faults.add('rpc', completion.fault)
    const first = exchange(input, SETTINGS)
    await completion.reached

    const replay = await exchange(input, SETTINGS)
    expect(replay.status).toBe(409)
    const body = (await replay.json()) as Record<string, unknown>
    expect(body).toMatchObject({ success: false, code: 'exchange_in_progress', retryable: true })
    // The first claim, then one after every poll, all while the twin held the state.
    expect(h.sleeps).toEqual(Array(REPLAY_POLLS).fill(REPLAY_POLL_MS))
    expect(logsOf(body.request_id, 'supabase.claim')).toHaveLength(1 + REPLAY_POLLS)
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)

    completion.release()
    expect((await first).status).toBe(200)
  })
})
