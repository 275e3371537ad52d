import { env } from 'cloudflare:workers'
import { evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DEFAULT_MARGIN_MS } from '../../src/quota/budget'
import { QuotaGovernor } from '../../src/quota/governor'

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

// Objects live for the whole file: each test takes its own app.
const governorOf = () => env.QUOTA.getByName(`app-${crypto.randomUUID()}`)

describe('QuotaGovernor', () => {
  it('one object per app counts every caller; another app has its own budget', async () => {
    const name = `app-${crypto.randomUUID()}`
    const a = env.QUOTA.getByName(name)
    const b = env.QUOTA.getByName(name)
    for (let i = 0; i < 5; i++) {
      expect(await a.reserve({ priority: 'interactive', maxWaitMs: 0 })).toEqual({ ok: true, waitMs: 0 })
      expect(await b.reserve({ priority: 'interactive', maxWaitMs: 0 })).toEqual({ ok: true, waitMs: 0 })
    }
    expect(await a.reserve({ priority: 'interactive', maxWaitMs: 5_000 })).toEqual({ ok: true, waitMs: 1000 + DEFAULT_MARGIN_MS })
    expect(await governorOf().reserve({ priority: 'interactive', maxWaitMs: 0 })).toEqual({ ok: true, waitMs: 0 })
    expect(await b.snapshot()).toMatchObject({ granted: { interactive: 11 }, held: 11 })
  })

  it('reads the tier from its env: the defaults here, 10 a second and 600 a minute', async () => {
    expect(await governorOf().snapshot()).toMatchObject({
      qps: 10,
      qpm: 600,
      sweepShare: 0.5,
      marginMs: DEFAULT_MARGIN_MS,
      ceilings: { second: { interactive: 10, proxy: 8, sweep: 7, sweepOwn: 5 } },
      backoff: null,
    })
  })

  it('a throttle report starts one back-off, which reservations then wait out', async () => {
    const governor = governorOf()
    vi.setSystemTime(T0 + 400)
    expect(await governor.report({ code: 40100 })).toEqual({ started: true, scope: 'app', window: 'second', backoffMs: 600 })
    expect(await governor.report({ code: 40100, sentAt: T0 + 300 })).toEqual({ started: false })
    expect(await governor.reserve({ priority: 'proxy', maxWaitMs: 1000 })).toEqual({ ok: true, waitMs: 600 })
    expect(await governor.reserve({ priority: 'sweep', maxWaitMs: 100 })).toEqual({ ok: false, reason: 'backoff', retryAfterMs: 600 })
  })

  it('refuses a malformed request with an error the caller sees', async () => {
    // Awaited as a plain promise: expect(...).rejects reads properties off the RPC promise, and each
    // read is a pipelined call of its own that fails unhandled.
    const error = await governorOf()
      .reserve({ priority: 'proxy', permits: 9, maxWaitMs: 0 })
      .then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(RangeError)
    expect((error as Error).message).toBe('9 permits exceed the proxy ceiling of 8 a second')
  })

  it('keeps itself in memory, by a pending timer, until nothing it granted can matter', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setTimeout', 'clearTimeout'], now: T0 })
    const governor = governorOf()
    expect(vi.getTimerCount()).toBe(0)
    await governor.reserve({ priority: 'interactive', maxWaitMs: 0 })
    await governor.reserve({ priority: 'proxy', maxWaitMs: 0 })
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
    for (let i = 0; i < 10; i++) await governor.reserve({ priority: 'interactive', maxWaitMs: 0 })
    expect(await governor.reserve({ priority: 'interactive', maxWaitMs: 0 })).toMatchObject({ ok: false })
    await evictDurableObject(governor)
    expect(await governor.reserve({ priority: 'interactive', maxWaitMs: 0 })).toEqual({ ok: true, waitMs: 0 })
    expect(await governor.snapshot()).toMatchObject({ held: 1 })
  })

  it('malformed settings: every call throws, naming the setting and its rule but never the value', async () => {
    await runInDurableObject(governorOf(), (_instance: QuotaGovernor, state) => {
      const misconfigured = new QuotaGovernor(state, { TIKTOK_QPS: '12.5', SWEEP_QUOTA_SHARE: '7' })
      expect(() => misconfigured.reserve({ priority: 'interactive', maxWaitMs: 0 })).toThrow(
        'quota settings malformed: TIKTOK_QPS must be a whole number from 1 to 1000; SWEEP_QUOTA_SHARE must be a decimal number above 0 and at most 1, e.g. 0.5',
      )
      expect(() => misconfigured.report({ code: 40100 })).toThrow(/quota settings malformed/)
      expect(() => misconfigured.snapshot()).toThrow(/quota settings malformed/)
      const tier = new QuotaGovernor(state, { TIKTOK_QPS: '20', TIKTOK_QPM: '1200', SWEEP_QUOTA_SHARE: '0.25' })
      expect(tier.snapshot()).toMatchObject({ qps: 20, qpm: 1200, sweepShare: 0.25, ceilings: { second: { sweepOwn: 5 } } })
    })
  })
})
