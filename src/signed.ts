/**
 * Small HMAC-SHA256 signed tokens: `<kind>.<payload>.<mac>`, both parts base64url without padding.
 * `kind` names the purpose and version, so a token minted for one purpose never verifies as another.
 */
// The codec lives in token-crypto.ts, the one file other services copy whole.
import { decodeBase64Url, encodeBase64Url } from './token-crypto'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const sha256 = (value: string): Promise<ArrayBuffer> => crypto.subtle.digest('SHA-256', encoder.encode(value))

const keys = new Map<string, Promise<CryptoKey>>()
/** An HMAC-SHA256 key per secret, imported once per isolate (state, tickets, HS256 user tokens). */
export const hmacKey = (secret: string): Promise<CryptoKey> => {
  let key = keys.get(secret)
  if (!key) {
    key = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])
    keys.set(secret, key)
  }
  return key
}

export async function seal(secret: string, kind: string, payload: unknown): Promise<string> {
  const body = `${kind}.${encodeBase64Url(encoder.encode(JSON.stringify(payload)))}`
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(body))
  return `${body}.${encodeBase64Url(mac)}`
}

/**
 * The payload when the token is of `kind` and its MAC verifies (Web Crypto's verify compares in
 * constant time); otherwise why not. Nothing in the payload is read before the MAC is checked.
 */
export async function unseal(
  secret: string,
  kind: string,
  token: string,
  maxLength: number,
): Promise<{ payload: unknown } | { reason: string }> {
  if (token.length > maxLength) return { reason: 'too_long' }
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] !== kind) return { reason: 'format' }
  const payload = decodeBase64Url(parts[1]!)
  const mac = decodeBase64Url(parts[2]!)
  if (!payload || !mac) return { reason: 'encoding' }
  const valid = await crypto.subtle.verify('HMAC', await hmacKey(secret), mac, encoder.encode(`${parts[0]}.${parts[1]}`))
  if (!valid) return { reason: 'signature' }
  try {
    return { payload: JSON.parse(decoder.decode(payload)) }
  } catch {
    return { reason: 'payload' }
  }
}
