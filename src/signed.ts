/**
 * Small HMAC-SHA256 signed tokens: `<kind>.<payload>.<mac>`, both parts base64url without padding.
 * `kind` names the purpose and version, so a token minted for one purpose never verifies as another.
 */
const encoder = new TextEncoder()

// The runtime's own base64 (Uint8Array.toBase64 / fromBase64, in workerd), not a JS loop per byte.
type Base64Options = { alphabet: 'base64url'; omitPadding?: boolean; lastChunkHandling?: 'strict' }
const toBase64 = (bytes: Uint8Array, options: Base64Options): string =>
  (bytes as Uint8Array & { toBase64(o: Base64Options): string }).toBase64(options)
const fromBase64 = (text: string, options: Base64Options): Uint8Array =>
  (Uint8Array as unknown as { fromBase64(t: string, o: Base64Options): Uint8Array }).fromBase64(text, options)

export const b64url = (bytes: ArrayBufferLike): string => toBase64(new Uint8Array(bytes), { alphabet: 'base64url', omitPadding: true })

/**
 * Decodes only the one text `b64url` would produce for these bytes: no padding, and the unused low
 * bits of the last character zero. Otherwise a token would have twins that verify just the same.
 */
export const decodeB64url = (part: string): Uint8Array | undefined => {
  if (!/^[A-Za-z0-9_-]+$/.test(part)) return undefined
  try {
    // 'strict' checks those bits but also demands padding, so the padding is ours, never the input's.
    const padded = part + '='.repeat((4 - (part.length % 4)) % 4)
    return fromBase64(padded, { alphabet: 'base64url', lastChunkHandling: 'strict' })
  } catch {
    return undefined
  }
}

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
  const body = `${kind}.${b64url(encoder.encode(JSON.stringify(payload)).buffer)}`
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(body))
  return `${body}.${b64url(mac)}`
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
  const payload = decodeB64url(parts[1]!)
  const mac = decodeB64url(parts[2]!)
  if (!payload || !mac) return { reason: 'encoding' }
  const valid = await crypto.subtle.verify('HMAC', await hmacKey(secret), mac, encoder.encode(`${parts[0]}.${parts[1]}`))
  if (!valid) return { reason: 'signature' }
  try {
    return { payload: JSON.parse(new TextDecoder().decode(payload)) }
  } catch {
    return { reason: 'payload' }
  }
}
