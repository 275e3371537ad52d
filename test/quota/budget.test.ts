import { describe, expect, it } from 'vitest'
import {
  Budget,
  type BudgetOptions,
  ceilingsFor,
  DEFAULT_MARGIN_MS,
  MAX_SPAN_MS,
  MAX_WAIT_MS,
  type Priority,
  type ReserveRequest,
} from '../../src/quota/budget'

/**
 * The governor's core on an injected clock. The guarantee under test is TikTok's view: calls counted
 * on arrival, in fixed windows aligned to the second and to the minute, each arriving up to the
 * margin after it was sent.
 */

/** A clock the test moves by hand. */
const manualClock = (start = 0) => {
  let now = start
  return { now: () => now, set: (at: number) => (now = at), advance: (ms: number) => (now += ms) }
}

const budgetAt = (clock: { now: () => number }, options: Partial<BudgetOptions> = {}) =>
  new Budget({ qps: 10, qpm: 600, sweepShare: 0.5, now: clock.now, ...options })

const ask = (priority: Priority, maxWaitMs = 0, extra: Partial<ReserveRequest> = {}): ReserveRequest => ({ priority, maxWaitMs, ...extra })

/** mulberry32: a small seeded generator, so a failing mix can be replayed. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** The most arrivals any window of `windowMs`, aligned at `phase`, received. */
const busiestWindow = (arrivals: number[], windowMs: number, phase = 0): number => {
  const perWindow = new Map<number, number>()
  for (const at of arrivals) {
    const key = Math.floor((at + phase) / windowMs)
    perWindow.set(key, (perWindow.get(key) ?? 0) + 1)
  }
  return Math.max(0, ...perWindow.values())
}

describe('ceilings', () => {
  it('keep interactive headroom the proxy cannot use, and a smaller part again for the sweep', () => {
    expect(ceilingsFor(10, 0.5, 0.2)).toEqual({ interactive: 10, proxy: 8, sweep: 7, sweepOwn: 5 })
    expect(ceilingsFor(600, 0.5, 0.2)).toEqual({ interactive: 600, proxy: 480, sweep: 420, sweepOwn: 300 })
    expect(ceilingsFor(600, 1, 0.2)).toEqual({ interactive: 600, proxy: 480, sweep: 420, sweepOwn: 420 })
    // A tier this small cannot keep every headroom; each class still gets a call through.
    expect(ceilingsFor(1, 0.5, 0.2)).toEqual({ interactive: 1, proxy: 1, sweep: 1, sweepOwn: 1 })
    expect(ceilingsFor(2, 0.5, 0.2)).toEqual({ interactive: 2, proxy: 1, sweep: 1, sweepOwn: 1 })
  })
})

describe('the limits, as TikTok counts them', () => {
  it('a full second makes the next call wait a second plus the margin from the first', () => {
    const clock = manualClock(5_000)
    const budget = budgetAt(clock)
    for (let i = 0; i < 10; i++) expect(budget.reserve(ask('interactive'))).toEqual({ ok: true, waitMs: 0 })
    expect(budget.reserve(ask('interactive', 5_000))).toEqual({ ok: true, waitMs: 1000 + DEFAULT_MARGIN_MS })
    expect(DEFAULT_MARGIN_MS).toBe(250)
  })

  it('the margin keeps calls sent at the end of one second and arriving in the next within the limit', () => {
    const schedule = (marginMs: number) => {
      const clock = manualClock(999)
      const budget = budgetAt(clock, { marginMs })
      const arrivals: number[] = []
      // Ten sent at 999 ms, each arriving 250 ms later, in TikTok's second 1...
      for (let i = 0; i < 10; i++) {
        const r = budget.reserve(ask('interactive'))
        if (r.ok) arrivals.push(clock.now() + r.waitMs + 250)
      }
      // ...then ten more asked for at 1000 ms, arriving at once.
      clock.set(1000)
      for (let i = 0; i < 10; i++) {
        const r = budget.reserve(ask('interactive', 5_000))
        if (r.ok) arrivals.push(clock.now() + r.waitMs)
      }
      return busiestWindow(arrivals, 1000)
    }
    expect(schedule(250)).toBe(10)
    // The same schedule without a margin is what TikTok refuses: the count itself can fail.
    expect(schedule(0)).toBe(20)
  })

  // Demand is several times the tier. The minute fills only where it is below what the seconds
  // allow (qps per 1.25 s, so 48 × qps a minute).
  it.each([
    { qps: 10, qpm: 600, seed: 1, minutes: 4, minuteFills: false },
    { qps: 10, qpm: 100, seed: 2, minutes: 4, minuteFills: true },
    { qps: 3, qpm: 40, seed: 3, minutes: 4, minuteFills: true },
    { qps: 1, qpm: 30, seed: 4, minutes: 4, minuteFills: true },
    { qps: 50, qpm: 3000, seed: 5, minutes: 2, minuteFills: false },
  ])('no aligned second or minute ever receives more than the tier: qps $qps, qpm $qpm (seed $seed)', ({ qps, qpm, seed, minutes, minuteFills }) => {
    const random = seeded(seed)
    const clock = manualClock(Math.floor(random() * 1_000_000))
    // Short minute back-offs, so the throttles mixed in do not stop the traffic for most of the run.
    const budget = new Budget({ qps, qpm, sweepShare: 0.5, now: clock.now, minuteBackoffMs: 2_000 })
    const arrivals: number[] = []
    const sweepArrivals: number[] = []
    const end = clock.now() + minutes * 60_000
    const priorities: Priority[] = ['interactive', 'proxy', 'sweep']
    while (clock.now() < end) {
      clock.advance(Math.floor(random() ** 3 * 400))
      const burst = 1 + Math.floor(random() * Math.max(2, qps / 4))
      for (let i = 0; i < burst; i++) {
        const priority = priorities[Math.floor(random() * 3)]!
        const permits = random() < 0.2 && qps >= 2 && qpm >= 2 ? 2 : 1
        const useWithinMs = random() < 0.3 ? Math.floor(random() * 1500) : 0
        const r = budget.reserve(ask(priority, Math.floor(random() * 2500), { permits: priority === 'sweep' ? 1 : permits, useWithinMs }))
        if (!r.ok) continue
        for (let p = 0; p < (priority === 'sweep' ? 1 : permits); p++) {
          // Sent anywhere in the span, arriving anywhere up to the margin later: the extremes most often.
          const sent = clock.now() + r.waitMs + Math.floor(random() * (useWithinMs + 1))
          const transit = random() < 0.4 ? 0 : random() < 0.66 ? DEFAULT_MARGIN_MS : random() * DEFAULT_MARGIN_MS
          arrivals.push(sent + transit)
          if (priority === 'sweep') sweepArrivals.push(sent + transit)
        }
      }
      if (random() < 0.002) budget.report({ code: random() < 0.5 ? 40100 : 40133, advertiserId: 'a1' })
    }
    // The mix came close to the limits, or the bounds below would prove little.
    expect(busiestWindow(arrivals, 1000)).toBeGreaterThanOrEqual(Math.floor(qps * 0.8))
    if (minuteFills) expect(busiestWindow(arrivals, 60_000)).toBeGreaterThanOrEqual(Math.floor(qpm * 0.8))
    // TikTok's windows may start anywhere relative to our clock.
    for (const phase of [0, 137, 500, 999]) {
      expect(busiestWindow(arrivals, 1000, phase)).toBeLessThanOrEqual(qps)
      expect(busiestWindow(arrivals, 60_000, phase * 60)).toBeLessThanOrEqual(qpm)
      expect(busiestWindow(sweepArrivals, 1000, phase)).toBeLessThanOrEqual(Math.max(1, Math.floor(qps * 0.5)))
      expect(busiestWindow(sweepArrivals, 60_000, phase * 60)).toBeLessThanOrEqual(Math.max(1, Math.floor(qpm * 0.5)))
    }
  })

  it('a reservation with a span counts in every window the span reaches', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock)
    expect(budget.reserve(ask('interactive', 0, { permits: 2, useWithinMs: 1000 }))).toEqual({ ok: true, waitMs: 0 })
    for (let i = 0; i < 8; i++) expect(budget.reserve(ask('interactive')).ok).toBe(true)
    // 1500 ms on, the eight single calls are out of reach, but the span's end (1000) is not until 2250.
    clock.set(1500)
    for (let i = 0; i < 8; i++) expect(budget.reserve(ask('interactive'))).toEqual({ ok: true, waitMs: 0 })
    expect(budget.reserve(ask('interactive', 5_000))).toEqual({ ok: true, waitMs: 750 })
  })

  it('the minute limit holds on its own when the seconds would allow more', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock, { qps: 10, qpm: 20 })
    let granted = 0
    for (let t = 0; t < 60_000; t += 100) {
      clock.set(t)
      if (budget.reserve(ask('interactive')).ok) granted++
    }
    expect(granted).toBe(20)
    // The next one goes when the first one (at 0) is a minute and the margin behind.
    expect(budget.reserve(ask('interactive', 5_000))).toEqual({ ok: true, waitMs: 60_000 + DEFAULT_MARGIN_MS - 59_900 })
  })
})

describe('priorities', () => {
  it('a proxy flood leaves interactive calls their headroom at once', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock)
    let proxyGranted = 0
    for (let i = 0; i < 1000; i++) if (budget.reserve(ask('proxy', 1000)).ok) proxyGranted++
    // All the proxy may book within its wait: eight, as the next window starts 1.25 s on.
    expect(proxyGranted).toBe(8)
    expect(budget.reserve(ask('interactive'))).toEqual({ ok: true, waitMs: 0 })
    expect(budget.reserve(ask('interactive'))).toEqual({ ok: true, waitMs: 0 })
    // A third at the same moment has used up the headroom; it waits one window, no longer.
    const third = budget.reserve(ask('interactive', 2_000))
    expect(third.ok && third.waitMs).toBe(1000 + DEFAULT_MARGIN_MS)
  })

  it('a person connecting while a service floods the proxy still connects, every time, without waiting', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock)
    const flows: number[] = []
    for (let t = 0; t < 30_000; t += 10) {
      clock.set(t)
      for (let i = 0; i < 5; i++) budget.reserve(ask('proxy', 1000))
      if (t % 3_000 === 1_500) {
        const flow = budget.reserve(ask('interactive', 2_000, { permits: 2, useWithinMs: 1_000 }))
        flows.push(flow.ok ? flow.waitMs : Infinity)
      }
    }
    expect(flows).toEqual(Array(10).fill(0))
    expect(budget.snapshot().refused.proxy).toBeGreaterThan(10_000)
  })

  it('the sweep takes only what the proxy leaves, and never more than its share', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock)
    // Alone, the sweep gets half the second's limit.
    let swept = 0
    for (let i = 0; i < 20; i++) if (budget.reserve(ask('sweep')).ok) swept++
    expect(swept).toBe(5)
    expect(budget.reserve(ask('sweep'))).toEqual({ ok: false, reason: 'busy', retryAfterMs: 1000 + DEFAULT_MARGIN_MS })

    // Once the proxy floods, nothing is left for the sweep within the proxy's own wait.
    const sweepDuringFlood: boolean[] = []
    for (let t = 10_000; t < 20_000; t += 50) {
      clock.set(t)
      for (let i = 0; i < 3; i++) budget.reserve(ask('proxy', 1000))
      const sweep = budget.reserve(ask('sweep', 1000)).ok
      // The first moments, before the proxy has filled a window, are not a flood yet.
      if (t >= 11_500) sweepDuringFlood.push(sweep)
    }
    expect(sweepDuringFlood).toHaveLength(170)
    expect(sweepDuringFlood.filter(Boolean)).toEqual([])
    // Once the flood is over and its bookings have passed, the sweep goes again.
    clock.set(20_000 + 1000 + 2 * (1000 + DEFAULT_MARGIN_MS))
    expect(budget.reserve(ask('sweep'))).toEqual({ ok: true, waitMs: 0 })
  })

  it('the sweep share applies to the minute as well', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock, { qps: 10, qpm: 20, sweepShare: 0.25 })
    let swept = 0
    for (let t = 0; t < 60_000; t += 500) {
      clock.set(t)
      if (budget.reserve(ask('sweep')).ok) swept++
    }
    expect(swept).toBe(5)
  })
})

describe('over budget', () => {
  it('refuses beyond maxWait with the time the next slot frees, which is then granted at once', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock)
    for (let i = 0; i < 8; i++) budget.reserve(ask('proxy'))
    const refused = budget.reserve(ask('proxy', 100))
    expect(refused).toEqual({ ok: false, reason: 'busy', retryAfterMs: 1000 + DEFAULT_MARGIN_MS })
    clock.advance(refused.ok ? 0 : refused.retryAfterMs)
    expect(budget.reserve(ask('proxy'))).toEqual({ ok: true, waitMs: 0 })
    expect(budget.snapshot()).toMatchObject({ granted: { proxy: 9 }, refused: { proxy: 1 } })
  })

  it('a refused reservation holds nothing', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock)
    for (let i = 0; i < 10; i++) budget.reserve(ask('interactive'))
    for (let i = 0; i < 100; i++) expect(budget.reserve(ask('proxy', 10)).ok).toBe(false)
    clock.set(1000 + DEFAULT_MARGIN_MS)
    for (let i = 0; i < 8; i++) expect(budget.reserve(ask('proxy'))).toEqual({ ok: true, waitMs: 0 })
  })

  it('refuses what no window could ever hold, and malformed requests, as programming errors', () => {
    const budget = budgetAt(manualClock())
    expect(() => budget.reserve(ask('proxy', 0, { permits: 9 }))).toThrow(RangeError)
    expect(() => budget.reserve(ask('sweep', 0, { permits: 6 }))).toThrow(RangeError)
    expect(() => budget.reserve(ask('interactive', 0, { permits: 0 }))).toThrow(RangeError)
    expect(() => budget.reserve(ask('interactive', -1))).toThrow(RangeError)
    expect(() => budget.reserve(ask('interactive', Infinity))).toThrow(RangeError)
    // Bounded so the governor can stay in memory for as long as a reservation matters.
    expect(() => budget.reserve(ask('interactive', MAX_WAIT_MS + 1))).toThrow(RangeError)
    expect(() => budget.reserve(ask('interactive', 0, { useWithinMs: MAX_SPAN_MS + 1 }))).toThrow(RangeError)
    expect(() => budget.reserve({ priority: 'batch' as Priority, maxWaitMs: 0 })).toThrow(RangeError)
    expect(() => new Budget({ qps: 0, qpm: 600, sweepShare: 0.5, now: Date.now })).toThrow(RangeError)
    expect(() => new Budget({ qps: 10, qpm: 600, sweepShare: 0, now: Date.now })).toThrow(RangeError)
  })
})

describe('back-offs when TikTok throttles anyway', () => {
  it('40100: app-wide to the end of the second, reported as new once', () => {
    const clock = manualClock(61_234)
    const budget = budgetAt(clock)
    expect(budget.report({ code: 40100 })).toEqual({ started: true, scope: 'app', window: 'second', backoffMs: 766 })
    // Answers to calls sent before the back-off ended belong to it.
    expect(budget.report({ code: 40100, sentAt: 61_200 })).toEqual({ started: false })
    expect(budget.report({ code: 40016, sentAt: 61_900 })).toEqual({ started: false })
    expect(budget.reserve(ask('interactive', 2_000))).toEqual({ ok: true, waitMs: 766 })
    expect(budget.reserve(ask('proxy', 500))).toEqual({ ok: false, reason: 'backoff', retryAfterMs: 766 })
    expect(budget.snapshot().backoff).toEqual({ window: 'second', remainingMs: 766 })
  })

  it('a throttle again soon after a second back-off is the minute limit: minutes, once', () => {
    const clock = manualClock(10_500)
    const budget = budgetAt(clock)
    expect(budget.report({ code: 40016 })).toMatchObject({ started: true, window: 'second', backoffMs: 500 })
    clock.set(12_100)
    expect(budget.report({ code: 40100, sentAt: 12_000 })).toEqual({ started: true, scope: 'app', window: 'minute', backoffMs: 300_000 })
    expect(budget.report({ code: 40100, sentAt: 12_050 })).toEqual({ started: false })
    expect(budget.reserve(ask('interactive', 2_000))).toEqual({ ok: false, reason: 'backoff', retryAfterMs: 300_000 })
    clock.advance(300_000)
    expect(budget.reserve(ask('interactive'))).toEqual({ ok: true, waitMs: 0 })
  })

  it('a throttle long after the last back-off is a second one again', () => {
    const clock = manualClock(10_500)
    const budget = budgetAt(clock)
    budget.report({ code: 40100 })
    clock.set(11_000 + 60_000)
    expect(budget.report({ code: 40100 })).toMatchObject({ started: true, window: 'second' })
  })

  it('40133: only that advertiser backs off, to the end of the second', () => {
    const clock = manualClock(3_400)
    const budget = budgetAt(clock)
    expect(budget.report({ code: 40133, advertiserId: '7012345678901234567' })).toEqual({
      started: true,
      scope: 'advertiser',
      window: 'second',
      backoffMs: 600,
    })
    expect(budget.report({ code: 40133, advertiserId: '7012345678901234567' })).toEqual({ started: false })
    expect(budget.reserve(ask('proxy', 1000, { advertiserId: '7012345678901234567' }))).toEqual({ ok: true, waitMs: 600 })
    expect(budget.reserve(ask('proxy', 100, { advertiserId: '7012345678901234567' }))).toEqual({ ok: false, reason: 'advertiser_backoff', retryAfterMs: 600 })
    expect(budget.reserve(ask('proxy', 0, { advertiserId: '7012345678901234599' }))).toEqual({ ok: true, waitMs: 0 })
    expect(budget.reserve(ask('proxy', 0))).toEqual({ ok: true, waitMs: 0 })
    // Without an advertiser there is nothing to back off.
    expect(budget.report({ code: 40133 })).toEqual({ started: false })
    expect(budget.snapshot().advertiserBackoffs).toBe(1)
  })

  it('other codes start nothing', () => {
    const budget = budgetAt(manualClock())
    for (const code of [0, 40105, 40001, 50000, 40200]) expect(budget.report({ code })).toEqual({ started: false })
    expect(budget.snapshot().backoff).toBeNull()
  })

  it('remembers a bounded number of advertisers, dropping the oldest back-off', () => {
    const clock = manualClock(100)
    const budget = budgetAt(clock, { maxAdvertiserBackoffs: 3 })
    for (const id of ['1', '2', '3', '4', '5']) budget.report({ code: 40133, advertiserId: id })
    expect(budget.snapshot().advertiserBackoffs).toBe(3)
    expect(budget.reserve(ask('proxy', 0, { advertiserId: '1' }))).toEqual({ ok: true, waitMs: 0 })
    expect(budget.reserve(ask('proxy', 0, { advertiserId: '5' }))).toMatchObject({ ok: false, reason: 'advertiser_backoff' })
  })
})

describe('memory', () => {
  it("is quiet once every reservation's windows and every back-off are over", () => {
    const clock = manualClock(1_000)
    const budget = budgetAt(clock)
    expect(budget.quietAt()).toBe(-Infinity)
    budget.reserve(ask('interactive', 0, { useWithinMs: 2_000 }))
    budget.reserve(ask('proxy'))
    expect(budget.quietAt()).toBe(1_000 + 2_000 + 60_000 + DEFAULT_MARGIN_MS)
    clock.set(5_000)
    budget.report({ code: 40133, advertiserId: '1' })
    expect(budget.quietAt()).toBe(63_250)
    budget.report({ code: 40100 })
    clock.set(6_000)
    budget.report({ code: 40100 })
    expect(budget.quietAt()).toBe(6_000 + 5 * 60_000)
  })

  it('holds no more than the reservations a window from now on can meet', () => {
    const clock = manualClock(0)
    const budget = budgetAt(clock)
    for (let t = 0; t < 10 * 60_000; t += 100) {
      clock.set(t)
      budget.reserve(ask('proxy', 1000))
      budget.reserve(ask('interactive', 1000))
    }
    // A minute of the tier behind (and the margin), and what is booked ahead.
    expect(budget.snapshot().held).toBeLessThanOrEqual(600 + 20)
    clock.advance(2 * 60_000)
    expect(budget.snapshot().held).toBe(0)
  })
})
