import { errors } from './errors'
import { seal, sha256, unseal } from './signed'
import { decodeBase64Url, encodeBase64Url } from './token-crypto'

/** The OAuth `state`: `v1.<payload>.<HMAC-SHA256>`. */
export type StatePayload = {
  v: 1
  /** Provider, so a state minted for another flow can never be replayed here. */
  p: 'tiktok_business'
  /** Supabase user id. */
  u: string
  /** Origin the flow started on; the exchange must come from the same one. */
  o: string
  /** Same-origin path to return to. */
  r: string
  iat: number
  exp: number
  /** SHA-256 of the browser-binding cookie: the state alone cannot forge the cookie. Also the state's unique id. */
  n: string
}

export const STATE_TTL_SECONDS = 600
const KIND = 'v1'
const PROVIDER = 'tiktok_business'
const MAX_STATE_LENGTH = 2048

export type MintedState = { state: string; binding: string; expiresAt: Date }

/** Mints a state and the random value for the browser-binding cookie that goes with it. */
export async function mintState(
  secret: string,
  input: { userId: string; origin: string; returnTo: string; now?: number },
): Promise<MintedState> {
  const iat = Math.floor((input.now ?? Date.now()) / 1000)
  const binding = encodeBase64Url(crypto.getRandomValues(new Uint8Array(32)))
  const payload: StatePayload = {
    v: 1,
    p: PROVIDER,
    u: input.userId,
    o: input.origin,
    r: input.returnTo,
    iat,
    exp: iat + STATE_TTL_SECONDS,
    n: encodeBase64Url(await sha256(binding)),
  }
  return { state: await seal(secret, KIND, payload), binding, expiresAt: new Date(payload.exp * 1000) }
}

const isPayload = (value: unknown): value is StatePayload => {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    v.v === 1 &&
    typeof v.p === 'string' &&
    typeof v.u === 'string' &&
    typeof v.o === 'string' &&
    typeof v.r === 'string' &&
    typeof v.n === 'string' &&
    Number.isInteger(v.iat) &&
    Number.isInteger(v.exp)
  )
}

/** Checks the signature, then the payload. Throws `invalid_state` or `state_expired`. */
export async function verifyState(secret: string, state: string, now = Date.now()): Promise<StatePayload> {
  const opened = await unseal(secret, KIND, state, MAX_STATE_LENGTH)
  if ('reason' in opened) throw errors.invalidState(opened.reason)
  if (!isPayload(opened.payload)) throw errors.invalidState('payload')
  if (opened.payload.p !== PROVIDER) throw errors.invalidState('provider')
  if (Math.floor(now / 1000) >= opened.payload.exp) throw errors.stateExpired()
  return opened.payload
}

/**
 * True when the cookie value hashes to `binding` (a state's `n`, which a selection ticket carries
 * too), compared in constant time.
 */
export async function bindingMatches(binding: string, cookieValue: string | undefined): Promise<boolean> {
  if (!cookieValue || cookieValue.length > 128) return false
  const expected = decodeBase64Url(binding)
  if (!expected || expected.byteLength !== 32) return false
  return crypto.subtle.timingSafeEqual(await sha256(cookieValue), expected)
}
