import { decodeHeader, verify } from 'hono/utils/jwt/jwt'
import type { JWTPayload } from 'hono/utils/jwt/types'
import { AppError, errors } from './errors'
import { fetchWithTimeout } from './http'
import type { Logger } from './log'
import { hmacKey } from './signed'

type Jwk = JsonWebKey & { kid?: string; alg?: string }
/** Imported keys are kept with their set: importing a JWK costs more than the verification itself. */
type KeySet = { keys: Jwk[]; fetchedAt: number; imported: Map<string, Promise<CryptoKey>> }

const JWKS_TTL_MS = 10 * 60_000
// An unknown kid may be a freshly rotated key, but refetching on every forged kid would let anyone
// make this Worker hammer the JWKS endpoint.
const JWKS_REFRESH_MIN_MS = 30_000
// Supabase publishes a handful of keys (current, standby, recently rotated); anything far larger is
// not a key set, and would be held in every isolate and scanned on every lookup.
const JWKS_MAX_BYTES = 64 * 1024
const JWKS_MAX_KEYS = 10
// Supabase's clock and this isolate's may disagree by a few seconds; a token just minted must work.
const CLOCK_SKEW_SECONDS = 30
const ASYMMETRIC = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
} as const
type AsymmetricAlg = keyof typeof ASYMMETRIC
const USER_ID = /^[A-Za-z0-9-]{1,64}$/

/** Per-isolate cache: a warm isolate verifies without a network call. */
const keySets = new Map<string, KeySet>()
const inflight = new Map<string, Promise<KeySet>>()

/** The body as text, refused once it passes `maxBytes`: Content-Length can be absent or wrong. */
async function readCapped(response: Response, maxBytes: number): Promise<string> {
  if (Number(response.headers.get('content-length')) > maxBytes) {
    await response.body?.cancel()
    throw new Error(`JWKS declares more than ${maxBytes} bytes`)
  }
  if (!response.body) return ''
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return text + decoder.decode()
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel()
      throw new Error(`JWKS is larger than ${maxBytes} bytes`)
    }
    text += decoder.decode(value, { stream: true })
  }
}

async function fetchKeySet(url: string, timeoutMs: number): Promise<KeySet> {
  const response = await fetchWithTimeout(url, { headers: { accept: 'application/json' } }, timeoutMs)
  if (!response.ok) throw new Error(`JWKS answered HTTP ${response.status}`)
  const body: unknown = JSON.parse(await readCapped(response, JWKS_MAX_BYTES))
  const keys = (body as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys)) throw new Error('JWKS has no keys array')
  return {
    keys: keys.filter((k): k is Jwk => typeof k === 'object' && k !== null).slice(0, JWKS_MAX_KEYS),
    fetchedAt: Date.now(),
    imported: new Map(),
  }
}

function publicKey(set: KeySet, kid: string, alg: AsymmetricAlg): Promise<CryptoKey> | undefined {
  const jwk = set.keys.find((k) => k.kid === kid)
  if (!jwk) return undefined
  if (jwk.alg && jwk.alg !== alg) throw errors.unauthorized('key_algorithm')
  let key = set.imported.get(`${kid} ${alg}`)
  if (!key) {
    key = crypto.subtle.importKey('jwk', jwk, ASYMMETRIC[alg], false, ['verify'])
    set.imported.set(`${kid} ${alg}`, key)
  }
  return key
}

async function keySetFor(url: string, kid: string | undefined, timeoutMs: number, log: Logger): Promise<KeySet> {
  const cached = keySets.get(url)
  const now = Date.now()
  const fresh = cached && now - cached.fetchedAt < JWKS_TTL_MS
  const knowsKid = cached?.keys.some((k) => k.kid === kid)
  if (cached && fresh && (knowsKid || now - cached.fetchedAt < JWKS_REFRESH_MIN_MS)) return cached

  let pending = inflight.get(url)
  if (!pending) {
    pending = fetchKeySet(url, timeoutMs).finally(() => inflight.delete(url))
    inflight.set(url, pending)
  }
  try {
    const set = await pending
    keySets.set(url, set)
    log.info('auth.jwks', { outcome: 'ok', keys: set.keys.length })
    return set
  } catch (error) {
    log.warn('auth.jwks', { outcome: 'error', error })
    // A stale set still verifies tokens signed by keys that have not rotated away; it is kept for
    // another short while so an unreachable JWKS endpoint is not asked again on every request.
    if (cached) {
      keySets.set(url, { ...cached, fetchedAt: now - JWKS_TTL_MS + JWKS_REFRESH_MIN_MS })
      return cached
    }
    throw errors.authUnavailable(error)
  }
}

export type VerifyOptions = { supabaseUrl: string; jwtSecret: string | undefined; timeoutMs: number; allowAnonymous: boolean }

/**
 * Verifies a Supabase access token: asymmetric signing keys through the project's JWKS, or HS256
 * with the legacy secret when one is configured. Returns the user id (`sub`).
 */
export async function verifySupabaseToken(token: string, options: VerifyOptions, log: Logger): Promise<string> {
  const issuer = `${options.supabaseUrl}/auth/v1`
  // Hono refuses any iat after its own clock; ours below allows for skew.
  const verification = { iss: issuer, aud: 'authenticated', iat: false }
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
      payload = await verify(token, await hmacKey(options.jwtSecret), { alg: 'HS256', ...verification })
    } else if (typeof header.alg === 'string' && Object.hasOwn(ASYMMETRIC, header.alg)) {
      const alg = header.alg as AsymmetricAlg
      if (typeof header.kid !== 'string') throw errors.unauthorized('no_kid')
      const set = await keySetFor(`${issuer}/.well-known/jwks.json`, header.kid, options.timeoutMs, log)
      const key = publicKey(set, header.kid, alg)
      if (!key) throw errors.unauthorized('unknown_kid')
      payload = await verify(token, await key, { alg, ...verification })
    } else {
      throw errors.unauthorized('algorithm')
    }
  } catch (error) {
    if (error instanceof AppError) throw error
    throw errors.unauthorized(error instanceof Error ? error.name : 'invalid')
  }

  // Hono skips the expiry check when `exp` is absent; Supabase always sets it, so require it.
  if (typeof payload.exp !== 'number') throw errors.unauthorized('no_exp')
  if (payload.iat !== undefined && !(typeof payload.iat === 'number' && payload.iat <= Date.now() / 1000 + CLOCK_SKEW_SECONDS))
    throw errors.unauthorized('iat')
  // Issuer and audience do not make it a user's session: the project's keys also sign tokens for the
  // `anon` and `service_role` database roles, and neither is a user who can connect an account.
  if (payload.role !== 'authenticated') throw errors.unauthorized('role')
  if (typeof payload.sub !== 'string' || !USER_ID.test(payload.sub)) throw errors.unauthorized('sub')
  // Anyone can mint an anonymous user with the public anon key, as many as they like: left open, each
  // one could connect and spend the app's TikTok quota (ALLOW_ANONYMOUS_USERS opts in).
  if (payload.is_anonymous === true && !options.allowAnonymous)
    throw new AppError('unauthorized', {
      message: 'Sign in with an account to connect TikTok; a guest session cannot.',
      detail: { reason: 'anonymous_user' },
    })
  return payload.sub
}
