import { DurableObject } from 'cloudflare:workers'
import { Budget, type BackoffReport, type BudgetSnapshot, type Reservation, type ReserveRequest, type ThrottleReport } from './budget'
import { type QuotaEnv, type QuotaProblem, readQuotaSettings } from './settings'

/**
 * The one place that counts the app's TikTok calls: one object per TikTok app
 * (`env.QUOTA.getByName(appId)`). TikTok's quota is global to the app, so every location's calls
 * must be counted in one place; the Rate Limiting binding counts per location and eventually, so it
 * cannot hold it.
 *
 * The budget lives in memory, and the object keeps itself there while it matters: an object with
 * nothing pending hibernates after 10 s idle and loses its memory, which would forget the minute
 * window; a pending timer until `quietAt` keeps it awake, and the platform evicts an awake idle
 * object after 70 s at the soonest, when nothing it granted can still fall in a window. A restart (a
 * deploy, a crash) still forgets the windows in progress and may grant one more window's worth
 * beside what it granted before. Settings are read once per object from its own env: `TIKTOK_QPS`,
 * `TIKTOK_QPM`, `SWEEP_QUOTA_SHARE`. Malformed ones make every call throw, which callers treat as
 * unreachable.
 */
export class QuotaGovernor extends DurableObject<QuotaEnv> {
  readonly #budget: Budget | undefined
  readonly #problems: QuotaProblem[]
  #awakeUntil = -Infinity
  #awake: ReturnType<typeof setTimeout> | undefined

  constructor(ctx: DurableObjectState, env: QuotaEnv) {
    super(ctx, env)
    const { settings, problems } = readQuotaSettings(env)
    this.#problems = problems
    this.#budget = settings && new Budget({ qps: settings.qps, qpm: settings.qpm, sweepShare: settings.sweepShare, now: () => Date.now() })
  }

  /** Permits for TikTok calls: sleep `waitMs`, then send; or do not send. */
  reserve(request: ReserveRequest): Reservation {
    const reservation = this.#ready().reserve(request)
    if (reservation.ok) this.#stayAwake()
    return reservation
  }

  /** A TikTok throttle answer; `started` says whether it began a back-off (log it once). */
  report(report: ThrottleReport): BackoffReport {
    const backoff = this.#ready().report(report)
    if (backoff.started) this.#stayAwake()
    return backoff
  }

  /** Settings, ceilings, what is held and what was granted and refused, for tests and health. */
  snapshot(): BudgetSnapshot {
    return this.#ready().snapshot()
  }

  /** A timer until the budget is quiet: no object with a timer set hibernates. */
  #stayAwake(): void {
    const quietAt = this.#ready().quietAt()
    if (quietAt <= this.#awakeUntil) return
    this.#awakeUntil = quietAt
    if (this.#awake !== undefined) clearTimeout(this.#awake)
    this.#awake = setTimeout(() => {}, quietAt - Date.now())
  }

  #ready(): Budget {
    // Names and rules only: the message crosses to the caller, which may log it.
    if (!this.#budget) throw new Error(`quota settings malformed: ${this.#problems.map((p) => `${p.name} ${p.reason}`).join('; ')}`)
    return this.#budget
  }
}
