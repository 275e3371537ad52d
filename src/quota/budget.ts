/**
 * The app's TikTok quota as one budget of permits, handed out as reservations: a caller is told how
 * long to sleep before sending (or that it may not send), and the budget never holds anyone.
 *
 * **What it guarantees.** TikTok counts the calls that *arrive* in fixed windows aligned to the second
 * and to the minute. A call sent at `t` arrives somewhere in `[t, t + D]`, so the calls reaching one
 * aligned window `[s, s + W)` were all sent within `[s - D, s + W)`. The budget keeps every interval
 * of length `W + D` (for W = 1 s and W = 60 s) meeting at most the limit's number of reservations,
 * so however the arrivals fall, no aligned window of TikTok's sees more than the limit. It assumes
 * nothing about where TikTok's windows start, so a clock offset between us and TikTok costs nothing.
 *
 * **D, the margin**, is 250 ms by default. The governor answers from a Durable Object, and the Worker
 * sleeps from the moment it reads that answer: its send is late by the answer's trip back (milliseconds
 * beside the object, a hundred or so from another continent), by timer lateness, and the call then
 * takes its own transit to TikTok. 250 ms covers those with room to spare; it costs throughput, since
 * a limit of N a second becomes N per 1.25 s (8 a second on the Basic tier of 10).
 *
 * **Priorities.** Each class may fill a window only up to its own ceiling, counting every class's
 * reservations: interactive calls (the OAuth flow, verify, disconnect) up to the whole limit, the
 * proxy up to the limit less a headroom kept for interactive calls, the sweep up to less again (so it
 * takes only what the proxy leaves), and the sweep's own reservations never more than `sweepShare`.
 * A proxy flood therefore always leaves interactive calls their headroom at once. The sweep should ask
 * with a `maxWaitMs` no longer than the proxy's: it then never books a slot ahead of a waiting proxy.
 */

export type Priority = 'interactive' | 'proxy' | 'sweep'

export type ReserveRequest = {
  priority: Priority
  /** TikTok calls this reservation covers (default 1): e.g. an OAuth flow's exchange and advertiser list. */
  permits?: number
  /**
   * How long after the slot the permits may still be used (default 0: all at the slot). Calls made one
   * after another (the advertiser list after the exchange answered) need it: the budget counts such a
   * reservation in every window its span reaches, and a permit used after its span is not covered.
   * Keep it short: the permits are held over the span and a window beyond it.
   */
  useWithinMs?: number
  /** Whose data the calls read: they also wait out that advertiser's back-off (TikTok's 40133). */
  advertiserId?: string
  /** The longest the caller will sleep before sending; beyond it the reservation is refused. */
  maxWaitMs: number
  /** The caller may give the permits back unused (`release`): the grant then carries an `id`. */
  cancellable?: boolean
}

export type RefusalReason = 'busy' | 'backoff' | 'advertiser_backoff'

/** Either sleep `waitMs`, then send; or do not send, and `retryAfterMs` is when a slot may be free. */
export type Reservation = { ok: true; waitMs: number; id?: number } | { ok: false; reason: RefusalReason; retryAfterMs: number }

export type ThrottleReport = {
  /** TikTok's answer code; only 40100, 40016 (the app's limits) and 40133 (an advertiser's) mean anything here. */
  code: number
  advertiserId?: string
  /**
   * When the throttled call was sent (epoch ms, default: now). An answer to a call sent before the
   * current back-off ended belongs to the throttle that started it, not to a new one.
   */
  sentAt?: number
}

export type LimitWindow = 'second' | 'minute'

/** Whether the report began a back-off: the caller logs once per back-off, not per throttled call. */
export type BackoffReport = { started: false } | { started: true; scope: 'app' | 'advertiser'; window: LimitWindow; backoffMs: number }

export type BudgetOptions = {
  qps: number
  qpm: number
  /** The most of either limit the sweep's own reservations may hold, in (0, 1]. */
  sweepShare: number
  now: () => number
  /** D above (default 250). */
  marginMs?: number
  /** The part of each limit the proxy cannot use, kept for interactive calls (default 0.2). */
  interactiveHeadroom?: number
  /** How long a back-off for the minute limit lasts (default 5 minutes, TikTok's advice). */
  minuteBackoffMs?: number
  /** Advertisers whose back-offs are remembered at once (default 1000); the oldest is dropped beyond. */
  maxAdvertiserBackoffs?: number
}

/** How much of one window each class may fill. */
export type Ceilings = { interactive: number; proxy: number; sweep: number; sweepOwn: number }

export type BudgetSnapshot = {
  qps: number
  qpm: number
  sweepShare: number
  marginMs: number
  ceilings: Record<LimitWindow, Ceilings>
  /** Reservations still counted (their spans can reach a window that is not over). */
  held: number
  backoff: { window: LimitWindow; remainingMs: number } | null
  advertiserBackoffs: number
  granted: Record<Priority, number>
  refused: Record<Priority, number>
}

type Held = { start: number; end: number; permits: number; priority: Priority }
type Limit = { window: LimitWindow; lengthMs: number; ceilings: Ceilings }
type Span = readonly [from: number, to: number]

export const DEFAULT_MARGIN_MS = 250
const SECOND_MS = 1000
const MINUTE_MS = 60_000
// Of the limit less the interactive headroom, the part the sweep leaves to the proxy.
const PROXY_HEADROOM = 0.1
// A new app-wide throttle this soon after the last back-off ended means the second was not the limit.
const REPEAT_MEANS_MINUTE_MS = MINUTE_MS
// Advertiser back-offs outlive their end by this much, so late answers from their calls still match.
const ADVERTISER_ECHO_MS = 10_000
const PRIORITIES: readonly Priority[] = ['interactive', 'proxy', 'sweep']
// How far ahead a reservation may reach. The governor keeps itself in memory until `quietAt`, and the
// platform evicts an idle object after 70 s at the soonest: a slot at most 5 s ahead, used within 4 s,
// stops mattering 69.25 s after the request that booked it.
export const MAX_WAIT_MS = 5_000
export const MAX_SPAN_MS = 4_000

/** Each class's ceiling for a limit of `limit` a window. Tiny limits cannot keep every headroom. */
export function ceilingsFor(limit: number, sweepShare: number, interactiveHeadroom: number): Ceilings {
  const forInteractive = limit >= 2 ? Math.min(limit - 1, Math.max(1, Math.ceil(limit * interactiveHeadroom))) : 0
  const proxy = limit - forInteractive
  const forProxy = proxy >= 2 ? Math.max(1, Math.ceil(limit * PROXY_HEADROOM)) : 0
  const sweep = Math.max(1, proxy - forProxy)
  // At least one, or a small tier with a small share would never sweep at all.
  const sweepOwn = Math.min(sweep, Math.max(1, Math.floor(limit * sweepShare)))
  return { interactive: limit, proxy, sweep, sweepOwn }
}

/**
 * Where the reservations counted by `weight` load windows of `lengthMs` beyond `threshold`. A window
 * is named by its last millisecond `e`; a reservation spanning `[start, end]` meets the windows
 * `e ∈ [start, end + lengthMs - 1]`. Walks the reservations by start and by end at once (both kept
 * sorted), so one call is linear. Returns the overloaded stretches of `e`, in order.
 */
function overloaded(byStart: readonly Held[], byEnd: readonly Held[], lengthMs: number, threshold: number, weight: (h: Held) => number): Span[] {
  const spans: Span[] = []
  let load = 0
  let s = 0
  let e = 0
  while (s < byStart.length || e < byEnd.length) {
    const nextStart = s < byStart.length ? byStart[s]!.start : Infinity
    const nextLeave = e < byEnd.length ? byEnd[e]!.end + lengthMs : Infinity
    const at = Math.min(nextStart, nextLeave)
    while (s < byStart.length && byStart[s]!.start === at) load += weight(byStart[s++]!)
    while (e < byEnd.length && byEnd[e]!.end + lengthMs === at) load -= weight(byEnd[e++]!)
    if (load > threshold) {
      // Every reservation that starts also ends, so an overload always has a next change.
      const until = Math.min(s < byStart.length ? byStart[s]!.start : Infinity, byEnd[e]!.end + lengthMs)
      spans.push([at, until - 1])
    }
  }
  return spans
}

/** Where `item` goes in `list`, sorted by `key`: after every equal one. */
function insertionPoint<T>(list: readonly T[], item: T, key: (t: T) => number): number {
  let low = 0
  let high = list.length
  while (low < high) {
    const mid = (low + high) >> 1
    if (key(list[mid]!) <= key(item)) low = mid + 1
    else high = mid
  }
  return low
}

/** The earliest `t >= from` in none of `blocked`. */
function firstFree(from: number, blocked: Span[]): number {
  blocked.sort((a, b) => a[0] - b[0])
  let t = from
  for (const [start, end] of blocked) {
    if (start > t) break
    if (end >= t) t = end + 1
  }
  return t
}

const count = (): Record<Priority, number> => ({ interactive: 0, proxy: 0, sweep: 0 })

export class Budget {
  readonly #now: () => number
  readonly #marginMs: number
  readonly #limits: readonly Limit[]
  readonly #longestMs: number
  readonly #minuteBackoffMs: number
  readonly #maxAdvertiserBackoffs: number
  readonly #settings: { qps: number; qpm: number; sweepShare: number }
  // The same reservations twice, sorted by start and by end, for the linear walk in `overloaded`.
  #byStart: Held[] = []
  #byEnd: Held[] = []
  #appBackoff: { until: number; window: LimitWindow } | undefined
  readonly #advertiserBackoffs = new Map<string, number>()
  readonly #granted = count()
  readonly #refused = count()
  // Cancellable reservations by id, until released or pruned.
  readonly #cancellable = new Map<number, Held>()
  #nextId = 1

  constructor(options: BudgetOptions) {
    const { qps, qpm, sweepShare } = options
    if (!Number.isInteger(qps) || qps < 1 || !Number.isInteger(qpm) || qpm < 1) throw new RangeError('qps and qpm must be whole numbers of at least 1')
    if (!(sweepShare > 0 && sweepShare <= 1)) throw new RangeError('sweepShare must be above 0 and at most 1')
    this.#now = options.now
    this.#marginMs = options.marginMs ?? DEFAULT_MARGIN_MS
    const headroom = options.interactiveHeadroom ?? 0.2
    this.#limits = [
      { window: 'second', lengthMs: SECOND_MS + this.#marginMs, ceilings: ceilingsFor(qps, sweepShare, headroom) },
      { window: 'minute', lengthMs: MINUTE_MS + this.#marginMs, ceilings: ceilingsFor(qpm, sweepShare, headroom) },
    ]
    this.#longestMs = MINUTE_MS + this.#marginMs
    this.#minuteBackoffMs = options.minuteBackoffMs ?? 5 * MINUTE_MS
    this.#maxAdvertiserBackoffs = options.maxAdvertiserBackoffs ?? 1000
    this.#settings = { qps, qpm, sweepShare }
  }

  reserve(request: ReserveRequest): Reservation {
    const { priority, maxWaitMs } = request
    const permits = request.permits ?? 1
    const spanMs = request.useWithinMs ?? 0
    if (!PRIORITIES.includes(priority)) throw new RangeError(`unknown priority ${String(priority)}`)
    if (!Number.isInteger(permits) || permits < 1) throw new RangeError('permits must be a whole number of at least 1')
    if (!Number.isInteger(spanMs) || spanMs < 0 || spanMs > MAX_SPAN_MS) throw new RangeError(`useWithinMs must be a whole number from 0 to ${MAX_SPAN_MS}`)
    if (!(maxWaitMs >= 0 && maxWaitMs <= MAX_WAIT_MS)) throw new RangeError(`maxWaitMs must be from 0 to ${MAX_WAIT_MS}`)
    for (const limit of this.#limits) {
      const ceiling = priority === 'sweep' ? limit.ceilings.sweepOwn : limit.ceilings[priority]
      if (permits > ceiling) throw new RangeError(`${permits} permits exceed the ${priority} ceiling of ${ceiling} a ${limit.window}`)
    }

    const now = this.#now()
    this.#prune(now)
    const appUntil = this.#appBackoff?.until ?? -Infinity
    const advertiserUntil = request.advertiserId === undefined ? -Infinity : (this.#advertiserBackoffs.get(request.advertiserId) ?? -Infinity)
    const blocked: Span[] = []
    const block = (spans: Span[], lengthMs: number) => {
      // A reservation at t meets the windows e ∈ [t, t + span + length - 1].
      for (const [from, to] of spans) blocked.push([from - spanMs - lengthMs + 1, to])
    }
    for (const limit of this.#limits) {
      const ceiling = limit.ceilings[priority]
      block(
        overloaded(this.#byStart, this.#byEnd, limit.lengthMs, ceiling - permits, (h) => h.permits),
        limit.lengthMs,
      )
      if (priority === 'sweep')
        block(
          overloaded(this.#byStart, this.#byEnd, limit.lengthMs, limit.ceilings.sweepOwn - permits, (h) => (h.priority === 'sweep' ? h.permits : 0)),
          limit.lengthMs,
        )
    }
    const slot = firstFree(Math.max(Math.ceil(now), appUntil, advertiserUntil), blocked)
    const waitMs = slot - now

    if (waitMs > maxWaitMs) {
      this.#refused[priority]++
      const reason: RefusalReason = appUntil > now + maxWaitMs ? 'backoff' : advertiserUntil > now + maxWaitMs ? 'advertiser_backoff' : 'busy'
      return { ok: false, reason, retryAfterMs: Math.ceil(waitMs) }
    }
    const held: Held = { start: slot, end: slot + spanMs, permits, priority }
    this.#byStart.splice(
      insertionPoint(this.#byStart, held, (h) => h.start),
      0,
      held,
    )
    this.#byEnd.splice(
      insertionPoint(this.#byEnd, held, (h) => h.end),
      0,
      held,
    )
    this.#granted[priority]++
    if (!request.cancellable) return { ok: true, waitMs }
    const id = this.#nextId++
    this.#cancellable.set(id, held)
    return { ok: true, waitMs, id }
  }

  /**
   * Gives a cancellable reservation's permits back: the caller sent none of its calls (an OAuth flow
   * whose claim found the state already used, so no exchange follows). False when it is unknown.
   */
  release(id: number): boolean {
    const held = this.#cancellable.get(id)
    if (!held) return false
    this.#cancellable.delete(id)
    this.#byStart.splice(this.#byStart.indexOf(held), 1)
    this.#byEnd.splice(this.#byEnd.indexOf(held), 1)
    return true
  }

  /**
   * Starts the back-off TikTok's throttle asks for: app-wide on 40100/40016 (to the end of the
   * second; for `minuteBackoffMs` when the throttle comes back within a minute of the last back-off,
   * since TikTok's codes do not say which limit was hit), per advertiser on 40133 (to the end of the
   * second). Calls sent before a back-off ended belong to it and start nothing.
   */
  report(report: ThrottleReport): BackoffReport {
    const now = this.#now()
    const sentAt = report.sentAt ?? now
    if (report.code === 40133) {
      if (report.advertiserId === undefined) return { started: false }
      this.#pruneAdvertisers(now)
      const until = this.#advertiserBackoffs.get(report.advertiserId)
      if (until !== undefined && sentAt < until) return { started: false }
      const next = Math.floor(now / SECOND_MS) * SECOND_MS + SECOND_MS
      // Re-inserted at the end: the map's order is the order back-offs began, oldest dropped first.
      this.#advertiserBackoffs.delete(report.advertiserId)
      if (this.#advertiserBackoffs.size >= this.#maxAdvertiserBackoffs) this.#advertiserBackoffs.delete(this.#advertiserBackoffs.keys().next().value!)
      this.#advertiserBackoffs.set(report.advertiserId, next)
      return { started: true, scope: 'advertiser', window: 'second', backoffMs: next - now }
    }
    if (report.code !== 40100 && report.code !== 40016) return { started: false }
    const last = this.#appBackoff
    if (last && sentAt < last.until) return { started: false }
    const window: LimitWindow = last && sentAt - last.until < REPEAT_MEANS_MINUTE_MS ? 'minute' : 'second'
    const until = window === 'minute' ? now + this.#minuteBackoffMs : Math.floor(now / SECOND_MS) * SECOND_MS + SECOND_MS
    this.#appBackoff = { until, window }
    return { started: true, scope: 'app', window, backoffMs: until - now }
  }

  /**
   * When nothing held can matter any more: every reservation's windows and every back-off are over.
   * Until then, forgetting the budget could let through more than the tier.
   */
  quietAt(): number {
    const lastEnd = this.#byEnd.at(-1)?.end
    let until = Math.max(lastEnd === undefined ? -Infinity : lastEnd + this.#longestMs, this.#appBackoff?.until ?? -Infinity)
    for (const advertiserUntil of this.#advertiserBackoffs.values()) until = Math.max(until, advertiserUntil)
    return until
  }

  snapshot(): BudgetSnapshot {
    const now = this.#now()
    this.#prune(now)
    this.#pruneAdvertisers(now)
    const backoff = this.#appBackoff && this.#appBackoff.until > now ? { window: this.#appBackoff.window, remainingMs: this.#appBackoff.until - now } : null
    return {
      ...this.#settings,
      marginMs: this.#marginMs,
      ceilings: { second: { ...this.#limits[0]!.ceilings }, minute: { ...this.#limits[1]!.ceilings } },
      held: this.#byStart.length,
      backoff,
      advertiserBackoffs: [...this.#advertiserBackoffs.values()].filter((until) => until > now).length,
      granted: { ...this.#granted },
      refused: { ...this.#refused },
    }
  }

  /** Drops reservations no window from now on can meet: memory stays within about two minute limits. */
  #prune(now: number): void {
    let gone = 0
    while (gone < this.#byEnd.length && this.#byEnd[gone]!.end + this.#longestMs <= now) gone++
    if (gone === 0) return
    this.#byEnd.splice(0, gone)
    this.#byStart = this.#byStart.filter((h) => h.end + this.#longestMs > now)
    for (const [id, held] of this.#cancellable) if (held.end + this.#longestMs <= now) this.#cancellable.delete(id)
  }

  #pruneAdvertisers(now: number): void {
    for (const [id, until] of this.#advertiserBackoffs) if (until + ADVERTISER_ECHO_MS <= now) this.#advertiserBackoffs.delete(id)
  }
}
