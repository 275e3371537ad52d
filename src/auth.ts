import { decodeHeader, verify, verifyWithJwks } from 'hono/utils/jwt/jwt'
import type { JWTPayload } from 'hono/utils/jwt/types'
import { AppError, errors } from './errors'
import { fetchWithTimeout } from './http'
import type { Logger } from './log'

type Jwk = JsonWebKey & { kid?: string; alg?: string }
type KeySet = { keys: Jwk[]; fetchedAt: number }

const JWKS_TTL_MS = 10 * 60_000
// An unknown kid may be a freshly rotated key, but refetching on every forged kid would let anyone
// make this Worker hammer the JWKS endpoint.
const JWKS_REFRESH_MIN_MS = 30_000
const ASYMMETRIC = ['ES256', 'RS256'] as const
const USER_ID = /^[A-Za-z0-9-]{1,64}$/

/** Per-isolate cache: a warm isolate verifies without a network call. */
const keySets = new Map<string, KeySet>()
const inflight = new Map<string, Promise<KeySet>>()

async function fetchKeySet(url: string, timeoutMs: number): Promise<KeySet> {
  const response = await fetchWithTimeout(url, { headers: { accept: 'application/json' } }, timeoutMs)
  if (!response.ok) throw new Error(`JWKS answered HTTP ${response.status}`)
  const body: unknown = await response.json()
  const keys = (body as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys)) throw new Error('JWKS has no keys array')
  return { keys: keys.filter((k): k is Jwk => typeof k === 'object' && k !== null), fetchedAt: Date.now() }
}

async function keysFor(url: string, kid: string | undefined, timeoutMs: number, log: Logger): Promise<Jwk[]> {
  const cached = keySets.get(url)
  const now = Date.now()
  const fresh = cached && now - cached.fetchedAt < JWKS_TTL_MS
  const knowsKid = cached?.keys.some((k) => k.kid === kid)
  if (cached && fresh && (knowsKid || now - cached.fetchedAt < JWKS_REFRESH_MIN_MS)) return cached.keys

  let pending = inflight.get(url)
  if (!pending) {
    pending = fetchKeySet(url, timeoutMs).finally(() => inflight.delete(url))
    inflight.set(url, pending)
  }
  try {
    const set = await pending
    keySets.set(url, set)
    log.info('auth.jwks', { outcome: 'ok', keys: set.keys.length })
    return set.keys
  } catch (error) {
    log.warn('auth.jwks', { outcome: 'error', error })
    // A stale set still verifies tokens signed by keys that have not rotated away.
    if (cached) return cached.keys
    throw errors.authUnavailable(error)
  }
}

export type VerifyOptions = { supabaseUrl: string; jwtSecret: string | undefined; timeoutMs: number }

/**
 * Verifies a Supabase access token: asymmetric signing keys through the project's JWKS, or HS256
 * with the legacy secret when one is configured. Returns the user id (`sub`).
 */
export async function verifySupabaseToken(token: string, options: VerifyOptions, log: Logger): Promise<string> {
  const issuer = `${options.supabaseUrl}/auth/v1`
  const verification = { iss: issuer, aud: 'authenticated' }
  let header: { alg?: unknown; kid?: unknown }
  try {
    header = decodeHeader(token) as typeof header
  } catch {
    throw errors.unauthorized('malformed')
  }

  let payload: JWTPayload
  try {
    if (header.alg === 'HS256') {
      if (!options.jwtSecret) throw errors.unauthorized('hs256_not_configured')
      payload = await verify(token, options.jwtSecret, { alg: 'HS256', ...verification })
    } else if (ASYMMETRIC.includes(header.alg as (typeof ASYMMETRIC)[number])) {
      const kid = typeof header.kid === 'string' ? header.kid : undefined
      const keys = await keysFor(`${issuer}/.well-known/jwks.json`, kid, options.timeoutMs, log)
      payload = await verifyWithJwks(token, { keys, allowedAlgorithms: [...ASYMMETRIC], verification })
    } else {
      throw errors.unauthorized('algorithm')
    }
  } catch (error) {
    if (error instanceof AppError) throw error
    throw errors.unauthorized(error instanceof Error ? error.name : 'invalid')
  }

  // Hono skips the expiry check when `exp` is absent; Supabase always sets it, so require it.
  if (typeof payload.exp !== 'number') throw errors.unauthorized('no_exp')
  if (typeof payload.sub !== 'string' || !USER_ID.test(payload.sub)) throw errors.unauthorized('sub')
  return payload.sub
}
