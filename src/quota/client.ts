import type { Logger } from '../log'
import type { BackoffReport, RefusalReason, Reservation, ReserveRequest, ThrottleReport } from './budget'
import type { QuotaGovernor, Tier } from './governor'
import type { QuotaSettings } from './settings'

/** What a caller does next: send (after the wait, already slept), send unguarded, or not send. */
export type Permit =
  | { kind: 'granted'; waitedMs: number; id?: number }
  /** The governor could not be asked; an interactive call goes ahead rather than fail a person. */
  | { kind: 'ungoverned' }
  | { kind: 'refused'; reason: RefusalReason | 'unreachable'; retryAfterMs: number }

export type QuotaDeps = {
  log: Pick<Logger, 'warn'>
  /** The wait before sending; tests pass their own. */
  sleep: (ms: number) => Promise<void>
  /** The longest the governor may take to answer (default GOVERNOR_TIMEOUT_MS). */
  timeoutMs?: number
}

/** Normally a few milliseconds; beyond this the object is taken as unreachable. */
export const GOVERNOR_TIMEOUT_MS = 1000
// What a refused proxy or sweep call is told when the governor is down: try again shortly.
const UNREACHABLE_RETRY_AFTER_MS = 1000

class GovernorTimeout extends Error {
  override name = 'GovernorTimeout'
}

/**
 * `call` with a deadline: a plain `setTimeout` (as src/http.ts's fetch deadline), so tests drive it
 * with fake timers.
 */
async function withDeadline<T>(call: () => Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new GovernorTimeout(`the quota governor did not answer within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    return await Promise.race([call(), deadline])
  } finally {
    if (timer !== undefined) clearTimeout(timer)
  }
}

/**
 * Takes permits for TikTok calls from the app's governor and sleeps until they may be used. When the
 * governor cannot be reached, interactive calls go ahead (logged `quota.unreachable`): a person's
 * connection matters more than a possible throttle, which TikTok answers with a code the flow already
 * handles. The proxy and the sweep do not: they are the calls that could burn the app's quota.
 */
export async function acquirePermits(
  binding: DurableObjectNamespace<QuotaGovernor>,
  appId: string,
  tier: Tier,
  request: ReserveRequest,
  deps: QuotaDeps,
): Promise<Permit> {
  const { priority } = request
  let answer: Reservation
  try {
    answer = await withDeadline(async (): Promise<Reservation> => binding.getByName(appId).reserve(tier, request), deps.timeoutMs ?? GOVERNOR_TIMEOUT_MS)
  } catch (error) {
    const proceed = priority === 'interactive'
    deps.log.warn('quota.unreachable', { outcome: proceed ? 'proceeding' : 'refused', priority, error })
    return proceed ? { kind: 'ungoverned' } : { kind: 'refused', reason: 'unreachable', retryAfterMs: UNREACHABLE_RETRY_AFTER_MS }
  }
  // Not logged here: the caller answers the refusal (a 429, the sweep's stop) and logs that once.
  if (!answer.ok) return { kind: 'refused', reason: answer.reason, retryAfterMs: answer.retryAfterMs }
  if (answer.waitMs > 0) await deps.sleep(answer.waitMs)
  return answer.id === undefined ? { kind: 'granted', waitedMs: answer.waitMs } : { kind: 'granted', waitedMs: answer.waitMs, id: answer.id }
}

/**
 * Tells the governor TikTok throttled a call, and logs `quota.backoff` when that began a back-off:
 * once per back-off, however many calls it throttled. A governor that cannot be reached is logged and
 * otherwise ignored: the throttled call has already failed on its own.
 */
export async function reportThrottle(
  binding: DurableObjectNamespace<QuotaGovernor>,
  appId: string,
  tier: Tier,
  report: ThrottleReport,
  deps: Omit<QuotaDeps, 'sleep'>,
): Promise<BackoffReport | undefined> {
  let answer: BackoffReport
  try {
    answer = await withDeadline(async (): Promise<BackoffReport> => binding.getByName(appId).report(tier, report), deps.timeoutMs ?? GOVERNOR_TIMEOUT_MS)
  } catch (error) {
    deps.log.warn('quota.unreachable', { outcome: 'report_lost', tiktok_code: report.code, error })
    return undefined
  }
  if (answer.started)
    deps.log.warn('quota.backoff', {
      scope: answer.scope,
      window: answer.window,
      backoff_ms: answer.backoffMs,
      tiktok_code: report.code,
      advertiser_id: report.advertiserId,
    })
  return answer
}

type QuotaOptions = { binding: DurableObjectNamespace<QuotaGovernor>; appId: string; priority: ReserveRequest['priority']; settings: QuotaSettings }

/** How long an interactive call (a person's connect, verify, disconnect) waits for a permit. */
export const INTERACTIVE_MAX_WAIT_MS = 2000

/** What a refused permit means to the caller: TikTok's quota, as TikTok would say it. */
export class QuotaRefused extends Error {
  readonly retryAfterMs: number
  constructor(reason: string, retryAfterMs: number) {
    super(`the app's TikTok quota has no room: ${reason}`)
    this.name = 'QuotaRefused'
    this.retryAfterMs = retryAfterMs
  }
}

/**
 * The app's quota for one unit of work, at one priority: every TikTok call takes a permit through
 * it (waiting as the governor says), and every throttle TikTok answers is reported back to it.
 */
export class Quota {
  readonly #options: QuotaOptions
  readonly #maxWaitMs: number
  readonly #deps: QuotaDeps
  readonly priority: ReserveRequest['priority']

  constructor(options: QuotaOptions, deps: QuotaDeps) {
    this.#options = options
    this.priority = options.priority
    // The sweep asks no longer than the proxy, so it never books a slot ahead of a waiting proxy call.
    this.#maxWaitMs = options.priority === 'interactive' ? INTERACTIVE_MAX_WAIT_MS : options.settings.proxyMaxWaitMs
    this.#deps = deps
  }

  /** The same app's quota at another priority (the sweep's, the proxy's). */
  at(priority: ReserveRequest['priority']): Quota {
    return new Quota({ ...this.#options, priority }, this.#deps)
  }

  /**
   * Waits for `permits` permits (sleeping as told); throws `QuotaRefused` when none comes within the
   * wait. `cancellable`: answers an id to give them back with (`release`).
   */
  async take(
    permits = 1,
    options: { useWithinMs?: number; advertiserId?: string; maxWaitMs?: number; cancellable?: boolean } = {},
  ): Promise<number | undefined> {
    const { binding, appId, settings } = this.#options
    const permit = await acquirePermits(
      binding,
      appId,
      settings,
      {
        priority: this.priority,
        permits,
        useWithinMs: options.useWithinMs,
        advertiserId: options.advertiserId,
        maxWaitMs: Math.min(options.maxWaitMs ?? this.#maxWaitMs, this.#maxWaitMs),
        ...(options.cancellable && { cancellable: true }),
      },
      this.#deps,
    )
    if (permit.kind === 'refused') throw new QuotaRefused(permit.reason, permit.retryAfterMs)
    return permit.kind === 'granted' ? permit.id : undefined
  }

  /** Gives unused permits back; a governor that cannot be reached keeps them until their windows pass. */
  async release(id: number): Promise<void> {
    const { binding, appId, settings } = this.#options
    try {
      await withDeadline(() => binding.getByName(appId).release(settings, id), this.#deps.timeoutMs ?? GOVERNOR_TIMEOUT_MS)
    } catch (error) {
      this.#deps.log.warn('quota.unreachable', { outcome: 'release_lost', error })
    }
  }

  /** TikTok throttled a call sent at `sentAt`: the governor backs off (logged once per back-off). */
  reportThrottle(code: number, sentAt: number, advertiserId?: string): Promise<unknown> {
    const { binding, appId, settings } = this.#options
    return reportThrottle(binding, appId, settings, { code, sentAt, advertiserId }, this.#deps)
  }
}
