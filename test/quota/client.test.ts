import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_MARGIN_MS, type Priority } from '../../src/quota/budget'
import { acquirePermits, GOVERNOR_TIMEOUT_MS, reportThrottle } from '../../src/quota/client'
import type { QuotaGovernor } from '../../src/quota/governor'

/**
 * The helper the Worker calls before each TikTok call: the reservation, the sleep, and what happens
 * when the governor cannot be reached (interactive calls go ahead, the proxy and the sweep do not).
 */
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0, 0)
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: T0 })
})
afterEach(() => {
  vi.useRealTimers()
})

type Line = { event: string; fields: Record<string, unknown> }
const recorder = () => {
  const lines: Line[] = []
  return { lines, log: { warn: (event: string, fields: Record<string, unknown> = {}) => void lines.push({ event, fields }) } }
}
/** The sleeps asked for, none of them real. */
const sleeper = () => {
  const slept: number[] = []
  return { slept, sleep: async (ms: number) => void slept.push(ms) }
}
const appId = () => `app-${crypto.randomUUID()}`
/** The Basic tier, as a Worker's checked settings send it with every call. */
const TIER = { qps: 10, qpm: 600, sweepShare: 0.5 }

/** A binding whose object fails every call the way `fail` says, counting the calls made. */
const brokenBinding = (fail: 'reject' | 'hang' | 'throw') => {
  const calls = { getByName: 0, reserve: 0, report: 0 }
  const answer = () => (fail === 'reject' ? Promise.reject(new Error('Durable Object reset because its code was updated.')) : new Promise<never>(() => {}))
  const binding = {
    getByName: () => {
      calls.getByName++
      if (fail === 'throw') throw new Error('binding unavailable')
      return {
        reserve: () => (calls.reserve++, answer()),
        report: () => (calls.report++, answer()),
      }
    },
  }
  return { calls, binding: binding as unknown as DurableObjectNamespace<QuotaGovernor> }
}

describe('acquirePermits through the real binding', () => {
  it('grants at once while there is room, and sleeps the wait the governor asks for', async () => {
    const app = appId()
    const { log, lines } = recorder()
    const { sleep, slept } = sleeper()
    for (let i = 0; i < 10; i++)
      expect(await acquirePermits(env.QUOTA, app, TIER, { priority: 'interactive', maxWaitMs: 0 }, { log, sleep })).toEqual({ kind: 'granted', waitedMs: 0 })
    expect(slept).toEqual([])
    expect(await acquirePermits(env.QUOTA, app, TIER, { priority: 'interactive', maxWaitMs: 2_000 }, { log, sleep })).toEqual({
      kind: 'granted',
      waitedMs: 1000 + DEFAULT_MARGIN_MS,
    })
    expect(slept).toEqual([1000 + DEFAULT_MARGIN_MS])
    expect(lines).toEqual([])
  })

  it('an OAuth flow takes its two permits in one governor call', async () => {
    const app = appId()
    const reserve = vi.fn((...args: Parameters<DurableObjectStub<QuotaGovernor>['reserve']>) => env.QUOTA.getByName(app).reserve(...args))
    const counting = { getByName: () => ({ reserve }) } as unknown as DurableObjectNamespace<QuotaGovernor>
    const { log } = recorder()
    const permit = await acquirePermits(
      counting,
      app,
      TIER,
      { priority: 'interactive', permits: 2, useWithinMs: 2_000, maxWaitMs: 2_000 },
      { log, sleep: sleeper().sleep },
    )
    expect(permit).toEqual({ kind: 'granted', waitedMs: 0 })
    expect(reserve).toHaveBeenCalledTimes(1)
    expect(await env.QUOTA.getByName(app).snapshot(TIER)).toMatchObject({ held: 1, granted: { interactive: 1 } })
  })

  it('over budget: refused with when to retry, nothing slept, nothing logged (the caller answers it)', async () => {
    const app = appId()
    const { log, lines } = recorder()
    const { sleep, slept } = sleeper()
    for (let i = 0; i < 8; i++) await acquirePermits(env.QUOTA, app, TIER, { priority: 'proxy', maxWaitMs: 0 }, { log, sleep })
    const refused = await acquirePermits(env.QUOTA, app, TIER, { priority: 'proxy', maxWaitMs: 1000 }, { log, sleep })
    expect(refused).toEqual({ kind: 'refused', reason: 'busy', retryAfterMs: 1000 + DEFAULT_MARGIN_MS })
    expect(slept).toEqual([])
    expect(lines).toEqual([])
  })
})

describe('acquirePermits when the governor cannot be reached', () => {
  it.each(['reject', 'throw'] as const)('governor failing (%s): interactive calls go ahead, logged; proxy and sweep are refused', async (fail) => {
    const { binding } = brokenBinding(fail)
    const { log, lines } = recorder()
    const { sleep, slept } = sleeper()
    expect(await acquirePermits(binding, appId(), TIER, { priority: 'interactive', maxWaitMs: 2_000 }, { log, sleep })).toEqual({ kind: 'ungoverned' })
    for (const priority of ['proxy', 'sweep'] satisfies Priority[])
      expect(await acquirePermits(binding, appId(), TIER, { priority, maxWaitMs: 1000 }, { log, sleep })).toEqual({
        kind: 'refused',
        reason: 'unreachable',
        retryAfterMs: 1000,
      })
    expect(slept).toEqual([])
    expect(lines.map((l) => [l.event, l.fields.outcome, l.fields.priority])).toEqual([
      ['quota.unreachable', 'proceeding', 'interactive'],
      ['quota.unreachable', 'refused', 'proxy'],
      ['quota.unreachable', 'refused', 'sweep'],
    ])
    expect(lines[0]!.fields.error).toBeInstanceOf(Error)
  })

  it('a governor that does not answer is unreachable after the timeout, not before', async () => {
    vi.useFakeTimers({ now: T0 })
    const { binding } = brokenBinding('hang')
    const { log, lines } = recorder()
    const settled: string[] = []
    const interactive = acquirePermits(binding, appId(), TIER, { priority: 'interactive', maxWaitMs: 2_000 }, { log, sleep: sleeper().sleep }).then((p) =>
      settled.push(`interactive:${p.kind}`),
    )
    const proxy = acquirePermits(binding, appId(), TIER, { priority: 'proxy', maxWaitMs: 1000 }, { log, sleep: sleeper().sleep }).then((p) =>
      settled.push(`proxy:${p.kind}`),
    )
    await vi.advanceTimersByTimeAsync(GOVERNOR_TIMEOUT_MS - 1)
    expect(settled).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    await Promise.all([interactive, proxy])
    expect(settled).toEqual(['interactive:ungoverned', 'proxy:refused'])
    expect((lines[0]!.fields.error as Error).message).toBe(`the quota governor did not answer within ${GOVERNOR_TIMEOUT_MS} ms`)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('an answer in time leaves no deadline timer behind', async () => {
    vi.useFakeTimers({ now: T0, toFake: ['Date', 'setTimeout', 'clearTimeout'] })
    // Not the real object: it sets a timer of its own (to stay in memory), which would be counted too.
    const answering = { getByName: () => ({ reserve: async () => ({ ok: true, waitMs: 0 }) }) } as unknown as DurableObjectNamespace<QuotaGovernor>
    const { log } = recorder()
    expect(await acquirePermits(answering, appId(), TIER, { priority: 'sweep', maxWaitMs: 0 }, { log, sleep: sleeper().sleep })).toEqual({
      kind: 'granted',
      waitedMs: 0,
    })
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('reportThrottle', () => {
  it('logs quota.backoff once per back-off, however many throttled calls report it', async () => {
    const app = appId()
    const { log, lines } = recorder()
    vi.setSystemTime(T0 + 250)
    expect(await reportThrottle(env.QUOTA, app, TIER, { code: 40100, sentAt: T0 + 100 }, { log })).toEqual({
      started: true,
      scope: 'app',
      window: 'second',
      backoffMs: 750,
    })
    for (let i = 0; i < 5; i++) expect(await reportThrottle(env.QUOTA, app, TIER, { code: 40100, sentAt: T0 + 200 }, { log })).toEqual({ started: false })
    expect(await reportThrottle(env.QUOTA, app, TIER, { code: 40133, advertiserId: '7012345678901234567' }, { log })).toMatchObject({
      started: true,
      scope: 'advertiser',
    })
    expect(lines).toEqual([
      { event: 'quota.backoff', fields: { scope: 'app', window: 'second', backoff_ms: 750, tiktok_code: 40100, advertiser_id: undefined } },
      { event: 'quota.backoff', fields: { scope: 'advertiser', window: 'second', backoff_ms: 750, tiktok_code: 40133, advertiser_id: '7012345678901234567' } },
    ])
  })

  it('a report the governor cannot take is logged and dropped', async () => {
    const { binding, calls } = brokenBinding('reject')
    const { log, lines } = recorder()
    expect(await reportThrottle(binding, appId(), TIER, { code: 40016 }, { log })).toBeUndefined()
    expect(calls.report).toBe(1)
    expect(lines.map((l) => [l.event, l.fields.outcome, l.fields.tiktok_code])).toEqual([['quota.unreachable', 'report_lost', 40016]])
  })
})
