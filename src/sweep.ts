import { type Checked, checkConnection } from './connections'
import { answerFor } from './errors'
import type { Services } from './services'
import type { SweepItem } from './supabase'
import { TikTokError } from './tiktok'

/**
 * Each checker starts at most one TikTok call a second, so the sweep never makes more than
 * SWEEP_CONCURRENCY calls a second (2 by default: 120 a minute, a fifth of the app's 600).
 */
export const CALL_INTERVAL_MS = 1000

export type SweepSummary = { checked: number; revoked: number; changed: number; errors: number; stopped_early: boolean; duration_ms: number }

const codeOf = (error: unknown) => answerFor(error).code

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
export async function sweepConnections(services: Services): Promise<SweepSummary> {
  // The sweep's calls take only what the app's quota leaves (the governor's sweep priority).
  const s = { ...services, tiktok: services.tiktok.at('sweep') }
  const { config, db, log, clock } = s
  const started = clock.now()
  const summary: SweepSummary = { checked: 0, revoked: 0, changed: 0, errors: 0, stopped_early: false, duration_ms: 0 }

  const check = async (item: SweepItem): Promise<void> => {
    const fields = { user_id: item.user_id }
    let checked: Checked
    try {
      checked = await checkConnection(s, { userId: item.user_id, connectedAt: item.connected_at, storedToken: item.access_token }, 'sweep', 1)
    } catch (error) {
      const tiktokCode = error instanceof TikTokError ? error.code : undefined
      if (error instanceof TikTokError && error.kind === 'rate_limited') {
        summary.stopped_early = true
        log.warn('sweep.check', { ...fields, outcome: 'rate_limited', tiktok_code: tiktokCode })
        return
      }
      summary.errors++
      log.warn('sweep.check', { ...fields, outcome: 'error', code: codeOf(error), tiktok_code: tiktokCode })
      return
    }
    summary.checked++
    if (checked.kind === 'revoked') {
      if (checked.recorded === 'ok') summary.revoked++
      return
    }
    const verified = await db.recordVerification(item.user_id, item.connected_at, checked.advertisers)
    if (verified.outcome === 'revoked') summary.revoked++
    if (verified.outcome === 'advertiser_removed') summary.changed++
    if (verified.outcome !== 'ok') log.info('sweep.check', { ...fields, outcome: verified.outcome })
  }

  try {
    const batch = await db.sweepBatch(config.sweepMaxPerRun)
    let next = 0
    const checker = async () => {
      let lastStart = -Infinity
      while (!summary.stopped_early && next < batch.length) {
        const wait = lastStart + CALL_INTERVAL_MS - clock.now()
        if (wait > 0) await clock.sleep(wait)
        // Another checker may have met a rate limit meanwhile.
        if (summary.stopped_early || next >= batch.length) return
        const item = batch[next++]!
        lastStart = clock.now()
        try {
          await check(item)
        } catch (error) {
          summary.errors++
          log.warn('sweep.check', { user_id: item.user_id, outcome: 'error', code: codeOf(error), error })
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(config.sweepConcurrency, batch.length) }, checker))
  } catch (error) {
    // The batch could not be taken: nothing was checked.
    summary.errors++
    log.error('sweep.batch', { outcome: 'error', error })
  } finally {
    summary.duration_ms = clock.now() - started
    log[summary.errors || summary.stopped_early ? 'warn' : 'info']('sweep.run', { ...summary })
  }
  return summary
}
