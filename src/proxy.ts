/**
 * The product's backends call TikTok through the Worker: TikTok's own paths below the proxy's prefix,
 * with the stored connection's token set here, so no backend ever holds the token or the app's
 * secret. Hono-free: the route checks who calls and answers; this decides what reaches TikTok.
 */
import { AppError } from './errors'
import type { Services } from './services'
import type { Forwarded } from './tiktok'

/** The TikTok API version the proxy serves; a caller's base URL is `https://<product>/api/tiktok/proxy`. */
export const PROXIED_PREFIX = 'open_api/v1.3/'
/** TikTok's answer to a connection's token that no longer works (the same set verify and the sweep use). */
const TOKEN_REJECTED = new Set([40105, 40102])

/**
 * Why the raw path (as the client sent it, below `/api/tiktok/proxy/`) may not be proxied, or
 * undefined. Only TikTok's Marketing API: never its OAuth endpoints (they take the app's secret),
 * and nothing a server between here and TikTok could read as another path (dot segments, encoded
 * slashes or dots, backslashes).
 */
export function pathProblem(rawPath: string): string | undefined {
  if (!rawPath.startsWith(PROXIED_PREFIX)) return 'outside_api'
  if (/%2f|%5c|%2e|\\/i.test(rawPath)) return 'encoded'
  const segments = rawPath.split('/')
  if (segments.some((segment) => segment === '.' || segment === '..')) return 'dot_segment'
  if (segments[2]?.toLowerCase() === 'oauth2') return 'oauth'
  if (segments.length < 3 || segments[2] === '') return 'no_endpoint'
  return undefined
}

export type ProxyCall = { userId: string; method: 'GET' | 'POST'; path: string; query: string; body?: ArrayBuffer }

/**
 * One call for the user's stored connection (one database read): refused without reaching TikTok
 * when there is none or it is revoked. TikTok refusing the token marks the connection revoked (its
 * event queued) and its answer still goes back as it is.
 */
export async function proxyCall(s: Services, call: ProxyCall): Promise<Forwarded> {
  const row = await s.db.readConnection(call.userId, true)
  if (!row?.tiktok_connected_at || !row.tiktok_access_token) throw new AppError('not_connected')
  if (row.tiktok_revoked_at) throw new AppError('connection_revoked')
  const accessToken = await s.tokens.decrypt(row.tiktok_access_token, call.userId, s.log)
  const forwarded = await s.tiktok.forward({ method: call.method, path: call.path.slice(PROXIED_PREFIX.length), query: call.query, body: call.body, accessToken })
  if (forwarded.code !== undefined && TOKEN_REJECTED.has(forwarded.code)) {
    // The caller gets TikTok's answer whatever the write does; the next call finds the mark.
    await s.db
      .markRevoked(call.userId, 'proxy', forwarded.code, row.tiktok_connected_at)
      .then((marked) => s.log.info('tiktok.token_revoked', { user_id: call.userId, tiktok_code: forwarded.code, detected_by: 'proxy', outcome: marked.outcome }))
      .catch((error: unknown) => s.log.warn('tiktok.token_revoked', { user_id: call.userId, outcome: 'error', error }))
  }
  return forwarded
}
