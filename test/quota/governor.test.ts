import { env } from 'cloudflare:workers'
import { evictDurableObject } from 'cloudflare:test'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_MARGIN_MS } from '../../src/quota/budget'

/**
 * The Durable Object through the real binding (`env.QUOTA`). Under the vitest plugin the object runs
 * in the test's own isolate, so a faked `Date` is its clock too: every reservation below is made at
 * a moment the test chose.
 */
const T0 = Date.UTC(2026, 11, 1, 12, 0, 0, 0)
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'], now: T0 })
})
afterEach(() => {
  vi.useRealTimers()
})

/** The Basic tier, as a Worker's checked settings send it with every call. */
const TIER = { qps: 10, qpm: 600, sweepShare: 0.5 }

// Objects live for the whole file: each test takes its own app.
const governorOf = () => env.QUOTA.getByName(`app-${crypto.randomUUID()}`)

describe('QuotaGovernor', () => {
  it('one object per app counts every caller; another app has its own budget', async () => {
    const name = `app-${crypto.randomUUID()}`
    const a = env.QUOTA.getByName(name)
    const b = env.QUOTA.getByName(name)
    for (let i = 0; i < 5; i++) {
      expect(await a.reserve(TIER, { priority: 'interactive', maxWaitMs: 0 })).toEqual({ ok: true, waitMs: 0 })
      expect(await b.reserve(TIER, { priority: 'interactive', maxWaitMs: 0 })).toEqual({ ok: true, waitMs: 0 })
    }
    expect(await a.reserve(TIER, { priority: 'interactive', maxWaitMs: 5_000 })).toEqual({ ok: true, waitMs: 1000 + DEFAULT_MARGIN_MS })
    expect(await governorOf().reserve(TIER, { priority: 'interactive', maxWaitMs: 0 })).toEqual({ ok: true, waitMs: 0 })
    expect(await b.snapshot(TIER)).toMatchObject({ granted: { interactive: 11 }, held: 11 })
  })

  it('keeps the tier the calls bring; a call with another (a deploy that changed it) starts the budget over on it', async () => {
    const governor = governorOf()
    expect(await governor.snapshot(TIER)).toMatchObject({
      qps: 10,
      qpm: 600,
      sweepShare: 0.5,
      marginMs: DEFAULT_MARGIN_MS,
      ceilings: { second: { interactive: 10, proxy: 8, sweep: 7, sweepOwn: 5 } },
      backoff: null,
    })
    await governor.reserve(TIER, { priority: 'interactive', maxWaitMs: 0 })
    expect(await governor.snapshot(TIER)).toMatchObject({ held: 1 })
    const advanced = { qps: 20, qpm: 1200, sweepShare: 0.25 }
    expect(await governor.snapshot(advanced)).toMatchObject({ qps: 20, qpm: 1200, sweepShare: 0.25, held: 0, ceilings: { second: { sweepOwn: 5 } } })
  })

  it('a throttle report starts one back-off, which reservations then wait out', async () => {
    const governor = governorOf()
    vi.setSystemTime(T0 + 400)
    expect(await governor.report(TIER, { code: 40100 })).toEqual({ started: true, scope: 'app', window: 'second', backoffMs: 600 })
    expect(await governor.report(TIER, { code: 40100, sentAt: T0 + 300 })).toEqual({ started: false })
    expect(await governor.reserve(TIER, { priority: 'proxy', maxWaitMs: 1000 })).toEqual({ ok: true, waitMs: 600 })
    expect(await governor.reserve(TIER, { priority: 'sweep', maxWaitMs: 100 })).toEqual({ ok: false, reason: 'backoff', retryAfterMs: 600 })
  })

  it('refuses a malformed request with an error the caller sees', async () => {
    // Awaited as a plain promise: expect(...).rejects reads properties off the RPC promise, and each
    // read is a pipelined call of its own that fails unhandled.
    const error = await governorOf()
      .reserve(TIER, { priority: 'proxy', permits: 9, maxWaitMs: 0 })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(error).toBeInstanceOf(RangeError)
    expect((error as Error).message).toBe('9 permits exceed the proxy ceiling of 8 a second')
  })

  it('keeps itself in memory, by a pending timer, until nothing it granted can matter', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: T0 })
    const governor = governorOf()
    expect(vi.getTimerCount()).toBe(0)
    await governor.reserve(TIER, { priority: 'interactive', maxWaitMs: 0 })
    await governor.reserve(TIER, { priority: 'proxy', maxWaitMs: 0 })
    // One timer, re-armed rather than added to.
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(60_000 + DEFAULT_MARGIN_MS - 1)
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(1)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('what a restart (a deploy, a crash) loses: the windows start over', async () => {
    // With its keep-awake timer real, evictDurableObject waits on the object (over 5 s here); faked, it evicts at once.
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: T0 })
    const governor = governorOf()
    for (let i = 0; i < 10; i++) await governor.reserve(TIER, { priority: 'interactive', maxWaitMs: 0 })
    expect(await governor.reserve(TIER, { priority: 'interactive', maxWaitMs: 0 })).toMatchObject({ ok: false })
    await evictDurableObject(governor)
    expect(await governor.reserve(TIER, { priority: 'interactive', maxWaitMs: 0 })).toEqual({ ok: true, waitMs: 0 })
    expect(await governor.snapshot(TIER)).toMatchObject({ held: 1 })
  })

  it('a malformed tier is refused with an error the caller sees', async () => {
    const error = await governorOf()
      .reserve({ qps: 12.5, qpm: 600, sweepShare: 7 }, { priority: 'interactive', maxWaitMs: 0 })
      .then(
        () => undefined,
        (e: unknown) => e,
      )
    expect(error).toBeInstanceOf(RangeError)
  })
})
