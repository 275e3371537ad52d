import type { Config } from './env'
import { AppError } from './errors'
import type { Logger } from './log'
import { openToken } from './stored-token'
import type { SupabaseStore, SweepItem } from './supabase'
import { type Advertiser, RATE_LIMITED, type TikTokClient, TOKEN_REJECTED, tiktokCodeOf } from './tiktok'

/**
 * Each checker starts at most one TikTok call a second, so the sweep never makes more than
 * SWEEP_CONCURRENCY calls a second (2 by default: 120 a minute, a fifth of the app's 600).
 */
export const CALL_INTERVAL_MS = 1000

export type SweepSummary = { checked: number; revoked: number; changed: number; errors: number; stopped_early: boolean; duration_ms: number }

export type SweepDeps = {
  config: Config
  db: SupabaseStore
  tiktok: TikTokClient
  log: Logger
  /** Called with the event id of every change the sweep commits. */
  enqueue: (eventId: string | null) => void
  /** Injected so tests pace without waiting. */
  sleep?: (ms: number) => Promise<void>
  now?: () => number
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * TikTok sends no event when an advertiser removes the app, so the only way to learn it is to use
 * the token. Takes the least recently checked live connections (leased, so overlapping runs take
 * different ones) and lists each one's advertisers:
 * - a token-rejected code (the set `?verify=true` uses): marked revoked;
 * - a list: recorded; the chosen advertiser gone clears the choice, an empty list marks it revoked;
 * - a rate-limit code: the run stops, the rest waits for a later run;
 * - anything else: logged and left as it is, tried again on a later pass.
 * Ends with one `sweep.run` line.
 */
export async function sweepConnections(deps: SweepDeps): Promise<SweepSummary> {
  const { config, db, tiktok, log, enqueue } = deps
  const sleep = deps.sleep ?? realSleep
  const now = deps.now ?? Date.now
  const started = now()
  const summary: SweepSummary = { checked: 0, revoked: 0, changed: 0, errors: 0, stopped_early: false, duration_ms: 0 }

  const check = async (item: SweepItem): Promise<void> => {
    const fields = { user_id: item.user_id }
    let advertisers: Advertiser[]
    try {
      const token = await openToken(config, log, item.access_token, item.user_id)
      advertisers = await tiktok.listAdvertisers(token, 1)
    } catch (error) {
      const code = tiktokCodeOf(error)
      if (code !== undefined && RATE_LIMITED.has(code)) {
        summary.stopped_early = true
        log.warn('sweep.check', { ...fields, outcome: 'rate_limited', tiktok_code: code })
        return
      }
      if (code === undefined || !TOKEN_REJECTED.has(code)) {
        summary.errors++
        log.warn('sweep.check', { ...fields, outcome: 'error', code: error instanceof AppError ? error.code : 'internal_error', tiktok_code: code })
        return
      }
      const marked = await db.markRevoked(item.user_id, 'sweep', code, item.connected_at)
      summary.checked++
      if (marked.outcome === 'ok') summary.revoked++
      enqueue(marked.event_id)
      log.info('sweep.check', { ...fields, outcome: 'revoked', tiktok_code: code, recorded: marked.outcome })
      return
    }
    const verified = await db.recordVerification(item.user_id, item.connected_at, advertisers)
    summary.checked++
    if (verified.outcome === 'revoked') summary.revoked++
    if (verified.outcome === 'advertiser_removed') summary.changed++
    enqueue(verified.event_id)
    if (verified.outcome !== 'ok') log.info('sweep.check', { ...fields, outcome: verified.outcome })
  }

  try {
    const batch = await db.sweepBatch(config.sweepMaxPerRun)
    let next = 0
    const checker = async () => {
      let lastStart = -Infinity
      while (!summary.stopped_early && next < batch.length) {
        const wait = lastStart + CALL_INTERVAL_MS - now()
        if (wait > 0) await sleep(wait)
        // Another checker may have met a rate limit meanwhile.
        if (summary.stopped_early || next >= batch.length) return
        const item = batch[next++]!
        lastStart = now()
        try {
          await check(item)
        } catch (error) {
          summary.errors++
          log.warn('sweep.check', { user_id: item.user_id, outcome: 'error', code: error instanceof AppError ? error.code : 'internal_error', error })
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(config.sweepConcurrency, batch.length) }, checker))
  } catch (error) {
    // The batch could not be taken: nothing was checked.
    summary.errors++
    log.error('sweep.batch', { outcome: 'error', error })
  } finally {
    summary.duration_ms = now() - started
    log[summary.errors || summary.stopped_early ? 'warn' : 'info']('sweep.run', { ...summary })
  }
  return summary
}
