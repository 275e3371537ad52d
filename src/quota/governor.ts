import { DurableObject } from 'cloudflare:workers'
import { Budget, type BackoffReport, type BudgetSnapshot, type Reservation, type ReserveRequest, type ThrottleReport } from './budget'
import { type QuotaEnv, type QuotaProblem, readQuotaSettings } from './settings'

/**
 * The one place that counts the app's TikTok calls: one object per TikTok app
 * (`env.QUOTA.getByName(appId)`). TikTok's quota is global to the app, so every location's calls
 * must be counted in one place; the Rate Limiting binding counts per location and eventually, so it
 * cannot hold it.
 *
 * The budget lives in memory. A restart (a deploy, a crash) forgets the windows in progress and may
 * grant one more window's worth next to what was granted before it; an idle object is evicted only
 * after more than a minute, when nothing it granted can still fall in a window, so eviction loses
 * nothing. Settings are read once per object from its own env: `TIKTOK_QPS`, `TIKTOK_QPM`,
 * `SWEEP_QUOTA_SHARE`. Malformed ones make every call throw, which callers treat as unreachable.
 */
export class QuotaGovernor extends DurableObject<QuotaEnv> {
  readonly #budget: Budget | undefined
  readonly #problems: QuotaProblem[]

  constructor(ctx: DurableObjectState, env: QuotaEnv) {
    super(ctx, env)
    const { settings, problems } = readQuotaSettings(env)
    this.#problems = problems
    this.#budget = settings && new Budget({ qps: settings.qps, qpm: settings.qpm, sweepShare: settings.sweepShare, now: () => Date.now() })
  }

  /** Permits for TikTok calls: sleep `waitMs`, then send; or do not send. */
  reserve(request: ReserveRequest): Reservation {
    return this.#ready().reserve(request)
  }

  /** A TikTok throttle answer; `started` says whether it began a back-off (log it once). */
  report(report: ThrottleReport): BackoffReport {
    return this.#ready().report(report)
  }

  /** Settings, ceilings, what is held and what was granted and refused, for tests and health. */
  snapshot(): BudgetSnapshot {
    return this.#ready().snapshot()
  }

  #ready(): Budget {
    // Names and rules only: the message crosses to the caller, which may log it.
    if (!this.#budget) throw new Error(`quota settings malformed: ${this.#problems.map((p) => `${p.name} ${p.reason}`).join('; ')}`)
    return this.#budget
  }
}
