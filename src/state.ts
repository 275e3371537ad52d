import { decodeBase64Url, encodeBase64Url } from 'hono/utils/encode'
import { errors } from './errors'

/** The OAuth `state`: `v1.<payload>.<HMAC-SHA256>`, both parts base64url without padding. */
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
  /** SHA-256 of the browser-binding cookie: the state alone cannot forge the cookie. */
  n: string
}

export const STATE_TTL_SECONDS = 600
const VERSION = 'v1'
const PROVIDER = 'tiktok_business'
const MAX_STATE_LENGTH = 2048
const encoder = new TextEncoder()

const b64url = (bytes: ArrayBufferLike): string => encodeBase64Url(bytes).replace(/=+$/, '')

const keys = new Map<string, Promise<CryptoKey>>()
const hmacKey = (secret: string): Promise<CryptoKey> => {
  let key = keys.get(secret)
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ])
    keys.set(secret, key)
  }
  return key
}

const sha256 = async (value: string): Promise<ArrayBuffer> => crypto.subtle.digest('SHA-256', encoder.encode(value))

export type MintedState = { state: string; binding: string; expiresAt: Date }

/** Mints a state and the random value for the browser-binding cookie that goes with it. */
export async function mintState(
  secret: string,
  input: { userId: string; origin: string; returnTo: string; now?: number },
): Promise<MintedState> {
  const iat = Math.floor((input.now ?? Date.now()) / 1000)
  const binding = b64url(crypto.getRandomValues(new Uint8Array(32)).buffer)
  const payload: StatePayload = {
    v: 1,
    p: PROVIDER,
    u: input.userId,
    o: input.origin,
    r: input.returnTo,
    iat,
    exp: iat + STATE_TTL_SECONDS,
    n: b64url(await sha256(binding)),
  }
  const body = `${VERSION}.${b64url(encoder.encode(JSON.stringify(payload)).buffer)}`
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(body))
  return { state: `${body}.${b64url(mac)}`, binding, expiresAt: new Date(payload.exp * 1000) }
}

const decode = (part: string): Uint8Array | undefined => {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined
  try {
    return decodeBase64Url(part)
  } catch {
    return undefined
  }
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

/**
 * Checks the signature (Web Crypto's HMAC verify compares in constant time), then the payload.
 * Throws `invalid_state` or `state_expired`; nothing else about the state is trusted before this.
 */
export async function verifyState(secret: string, state: string, now = Date.now()): Promise<StatePayload> {
  if (state.length > MAX_STATE_LENGTH) throw errors.invalidState('too_long')
  const parts = state.split('.')
  if (parts.length !== 3 || parts[0] !== VERSION) throw errors.invalidState('format')
  const payloadBytes = decode(parts[1]!)
  const mac = decode(parts[2]!)
  if (!payloadBytes || !mac) throw errors.invalidState('encoding')
  const valid = await crypto.subtle.verify('HMAC', await hmacKey(secret), mac, encoder.encode(`${parts[0]}.${parts[1]}`))
  if (!valid) throw errors.invalidState('signature')

  let payload: unknown
  try {
    payload = JSON.parse(new TextDecoder().decode(payloadBytes))
  } catch {
    throw errors.invalidState('payload')
  }
  if (!isPayload(payload)) throw errors.invalidState('payload')
  if (payload.p !== PROVIDER) throw errors.invalidState('provider')
  if (Math.floor(now / 1000) >= payload.exp) throw errors.stateExpired()
  return payload
}

/** True when the cookie value hashes to the state's binding, compared in constant time. */
export async function bindingMatches(payload: StatePayload, cookieValue: string | undefined): Promise<boolean> {
  if (!cookieValue || cookieValue.length > 128) return false
  const expected = decode(payload.n)
  if (!expected || expected.byteLength !== 32) return false
  return crypto.subtle.timingSafeEqual(await sha256(cookieValue), expected)
}
