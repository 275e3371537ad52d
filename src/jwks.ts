import { AppError } from './errors'
import { fetchWithTimeout } from './http'
import type { Logger } from './log'

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

export const ASYMMETRIC = {
  ES256: { name: 'ECDSA', namedCurve: 'P-256' },
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
} as const
export type AsymmetricAlg = keyof typeof ASYMMETRIC

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

/**
 * A Supabase project's signing keys (`/auth/v1/.well-known/jwks.json`), held for the isolate's life:
 * a warm isolate verifies a user's token without a network call. One per isolate, built by the
 * composition root.
 */
export class SupabaseKeys {
  readonly #url: string
  readonly #timeoutMs: number
  #set: KeySet | undefined
  #inflight: Promise<KeySet> | undefined

  constructor(supabaseUrl: string, timeoutMs: number) {
    this.#url = `${supabaseUrl}/auth/v1/.well-known/jwks.json`
    this.#timeoutMs = timeoutMs
  }

  /** The public key `kid` for `alg`; undefined when the project has no such key (after a refresh if due). */
  async publicKey(kid: string, alg: AsymmetricAlg, log: Logger): Promise<CryptoKey | undefined> {
    const set = await this.#keySet(kid, log)
    const jwk = set.keys.find((k) => k.kid === kid)
    if (!jwk) return undefined
    if (jwk.alg && jwk.alg !== alg) throw new AppError('unauthorized', { reason: 'key_algorithm' })
    let key = set.imported.get(`${kid} ${alg}`)
    if (!key) {
      key = crypto.subtle.importKey('jwk', jwk, ASYMMETRIC[alg], false, ['verify'])
      set.imported.set(`${kid} ${alg}`, key)
    }
    return key
  }

  async #fetch(): Promise<KeySet> {
    const response = await fetchWithTimeout(this.#url, { headers: { accept: 'application/json' } }, this.#timeoutMs)
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

  async #keySet(kid: string, log: Logger): Promise<KeySet> {
    const cached = this.#set
    const now = Date.now()
    const fresh = cached && now - cached.fetchedAt < JWKS_TTL_MS
    const knowsKid = cached?.keys.some((k) => k.kid === kid)
    if (cached && fresh && (knowsKid || now - cached.fetchedAt < JWKS_REFRESH_MIN_MS)) return cached

    this.#inflight ??= this.#fetch().finally(() => (this.#inflight = undefined))
    try {
      const set = await this.#inflight
      this.#set = set
      log.info('auth.jwks', { outcome: 'ok', keys: set.keys.length })
      return set
    } catch (error) {
      log.warn('auth.jwks', { outcome: 'error', error })
      // A stale set still verifies tokens signed by keys that have not rotated away; it is kept for
      // another short while so an unreachable JWKS endpoint is not asked again on every request.
      if (cached) {
        this.#set = { ...cached, fetchedAt: now - JWKS_TTL_MS + JWKS_REFRESH_MIN_MS }
        return cached
      }
      throw new AppError('auth_unavailable', { cause: error })
    }
  }
}
