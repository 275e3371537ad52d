/**
 * The product's backends call TikTok through the Worker: TikTok's own paths below the proxy's prefix,
 * with the stored connection's token set here, so no backend ever holds the token or the app's
 * secret. Hono-free: the route checks who calls and answers; this decides what reaches TikTok.
 */
import { checkConnection } from './connections'
import { AppError, answerFor } from './errors'
import type { Services } from './services'
import { type Forwarded, kindOfCode, TikTokError } from './tiktok'

/** The TikTok API version the proxy serves; a caller's base URL is `https://<product>/api/tiktok/proxy`. */
export const PROXIED_PREFIX = 'open_api/v1.3/'

/** A connection proxied through is recorded as verified at most this often (the SQL holds the same rule). */
const RECORD_USE_EVERY_MS = 10 * 60_000

/** The advertiser a read is about (`advertiser_id`, or the first of `advertiser_ids`), for TikTok's per-advertiser limit. */
function advertiserOf(query: string): string | undefined {
  const params = new URLSearchParams(query)
  const one = params.get('advertiser_id')
  if (one && /^\d{1,32}$/.test(one)) return one
  const first = /^\[\s*"?(\d{1,32})/.exec(params.get('advertiser_ids') ?? '')?.[1]
  return first
}

/**
 * Why the raw path (as the client sent it, below `/api/tiktok/proxy/`) may not be proxied, or
 * undefined. Only TikTok's Marketing API: never its OAuth endpoints (they take the app's secret),
 * and nothing a server between here and TikTok could read as another path (dot segments, encoded
 * slashes or dots, backslashes).
 */
export function pathProblem(rawPath: string): string | undefined {
  if (!rawPath.startsWith(PROXIED_PREFIX)) return 'outside_api'
  // TikTok's paths are plain ASCII: an escape (%2F, %2e, or %6f spelling a letter) only hides one.
  if (/[%\\]/.test(rawPath)) return 'encoded'
  const segments = rawPath.split('/')
  if (segments.some((segment) => segment === '.' || segment === '..')) return 'dot_segment'
  if (segments[2]?.toLowerCase() === 'oauth2') return 'oauth'
  if (segments.length < 3 || segments[2] === '') return 'no_endpoint'
  return undefined
}

export type ProxyCall = { userId: string; method: 'GET' | 'POST'; path: string; query: string; body?: ArrayBuffer }

/**
 * One call for the user's stored connection (one database read): refused without reaching TikTok
 * when there is none or it is revoked. TikTok refusing the token leads to the sweep's check, which
 * marks the connection revoked (its event queued) if the advertiser list refuses it too; TikTok's
 * answer goes back as it is either way.
 */
export async function proxyCall(s: Services, call: ProxyCall): Promise<Forwarded> {
  const row = await s.db.readConnection(call.userId, true)
  if (!row?.access_token) throw new AppError('not_connected')
  if (row.revoked_at) throw new AppError('connection_revoked')
  const accessToken = await s.tokens.decrypt(row.access_token, call.userId, s.log)
  const tiktok = s.tiktok.at('proxy')
  const started = s.clock.now()
  const send = (maxWaitMs?: number) =>
    tiktok.forward({
      method: call.method,
      path: call.path.slice(PROXIED_PREFIX.length),
      query: call.query,
      body: call.body,
      accessToken,
      advertiserId: advertiserOf(call.query),
      maxWaitMs,
    })
  let forwarded: Forwarded
  try {
    forwarded = await send()
    // A read TikTok throttled anyway goes once more, if the budget is back within the caller's
    // wait; a write never (TikTok may have done it).
    const left = s.config.quota.proxyMaxWaitMs - (s.clock.now() - started)
    if (call.method === 'GET' && kindOfCode(forwarded.code) === 'rate_limited' && left > 0) forwarded = await send(left).catch(() => forwarded)
  } catch (error) {
    if (error instanceof TikTokError && error.kind === 'rate_limited' && error.reason === 'quota') {
      const seconds = Math.max(1, Math.ceil((error.retryAfterMs ?? 1000) / 1000))
      throw new AppError('tiktok_quota_exhausted', { reason: 'quota', headers: { 'Retry-After': String(seconds) } })
    }
    throw error
  }
  if (kindOfCode(forwarded.code) === 'token_rejected') {
    // One endpoint refusing the token may be that endpoint's own rule: the connection is marked
    // revoked only when the check the sweep makes (the advertiser list) refuses it too. The caller
    // gets TikTok's answer whatever the check finds; the next call finds the mark.
    await checkConnection(s, { userId: call.userId, connectedAt: row.connected_at, storedToken: row.access_token }, 'proxy', 1).catch((error: unknown) =>
      s.log.warn('tiktok.token_revoked', { user_id: call.userId, detected_by: 'proxy', outcome: 'check_failed', code: answerFor(error).code }),
    )
  }
  // Health from every call: a working token is what the sweep would check for, so a connection in
  // use costs the sweep nothing. Written at most once per 10 minutes, after the answer.
  if (forwarded.code === 0 && !(row.verified_at && s.clock.now() - Date.parse(row.verified_at) < RECORD_USE_EVERY_MS))
    s.background(s.db.recordUse(call.userId, row.connected_at).catch((error: unknown) => s.log.warn('supabase.record_use', { outcome: 'error', error })))
  return forwarded
}
