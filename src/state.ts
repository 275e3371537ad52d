import { decodeBase64Url, encodeBase64Url } from './encoding'
import { AppError } from './errors'
import { sha256, type TokenKind, type TokenSigner } from './signed'

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
const PROVIDER = 'tiktok_business'

export const STATE: TokenKind<StatePayload> = {
  prefix: 'v1',
  maxLength: 2048,
  read: (value) => {
    if (typeof value !== 'object' || value === null) return undefined
    const v = value as Record<string, unknown>
    const shaped =
      v.v === 1 &&
      v.p === PROVIDER &&
      typeof v.u === 'string' &&
      typeof v.o === 'string' &&
      typeof v.r === 'string' &&
      typeof v.n === 'string' &&
      Number.isInteger(v.iat) &&
      Number.isInteger(v.exp)
    return shaped ? (value as StatePayload) : undefined
  },
  invalid: (reason) => new AppError('invalid_state', { reason }),
  expired: () => new AppError('state_expired'),
}

export type MintedState = { state: string; binding: string; expiresAt: Date }

/** Mints a state and the random value for the browser-binding cookie that goes with it. */
export async function mintState(signer: TokenSigner, input: { userId: string; origin: string; returnTo: string }, now: number): Promise<MintedState> {
  const iat = Math.floor(now / 1000)
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
  return { state: await signer.sign(STATE, payload), binding, expiresAt: new Date(payload.exp * 1000) }
}

/**
 * True when the cookie value hashes to `binding` (a state's `n`, which a selection ticket carries
 * too), compared in constant time.
 */
export async function bindingMatches(binding: string, cookieValue: string | undefined): Promise<boolean> {
  if (!cookieValue || cookieValue.length > 128) return false
  const expected = decodeBase64Url(binding)
  if (expected?.byteLength !== 32) return false
  return crypto.subtle.timingSafeEqual(await sha256(cookieValue), expected)
}
