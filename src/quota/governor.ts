import { DurableObject } from 'cloudflare:workers'
import { Budget, type BackoffReport, type BudgetSnapshot, type Reservation, type ReserveRequest, type ThrottleReport } from './budget'
import type { QuotaSettings } from './settings'

/** The app's tier, as every caller's checked settings give it (TIKTOK_QPS, TIKTOK_QPM, SWEEP_QUOTA_SHARE). */
export type Tier = Pick<QuotaSettings, 'qps' | 'qpm' | 'sweepShare'>

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
 * beside what it granted before. The tier comes with every call, from the caller's checked settings
 * (every Worker of the app has the same); a call with another tier (a deploy that changed it) starts
 * the budget over on the new one.
 */
export class QuotaGovernor extends DurableObject {
  #budget: Budget | undefined
  #tier: Tier | undefined
  #awakeUntil = -Infinity
  #awake: ReturnType<typeof setTimeout> | undefined

  reserve(tier: Tier, request: ReserveRequest): Reservation {
    const reservation = this.#ready(tier).reserve(request)
    if (reservation.ok) this.#stayAwake()
    return reservation
  }

  report(tier: Tier, report: ThrottleReport): BackoffReport {
    const backoff = this.#ready(tier).report(report)
    if (backoff.started) this.#stayAwake()
    return backoff
  }

  /** Gives an unused cancellable reservation back. */
  release(tier: Tier, id: number): boolean {
    return this.#ready(tier).release(id)
  }

  snapshot(tier: Tier): BudgetSnapshot {
    return this.#ready(tier).snapshot()
  }

  #stayAwake(): void {
    const quietAt = this.#budget!.quietAt()
    if (quietAt <= this.#awakeUntil) return
    this.#awakeUntil = quietAt
    if (this.#awake !== undefined) clearTimeout(this.#awake)
    this.#awake = setTimeout(() => {}, quietAt - Date.now())
  }

  #ready(tier: Tier): Budget {
    const same = this.#tier && this.#tier.qps === tier.qps && this.#tier.qpm === tier.qpm && this.#tier.sweepShare === tier.sweepShare
    if (!this.#budget || !same) {
      // Budget checks the numbers and throws a RangeError the caller sees.
      this.#budget = new Budget({ qps: tier.qps, qpm: tier.qpm, sweepShare: tier.sweepShare, now: () => Date.now() })
      this.#tier = { qps: tier.qps, qpm: tier.qpm, sweepShare: tier.sweepShare }
    }
    return this.#budget
  }
}
