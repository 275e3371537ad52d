/**
 * The Worker's one codec for bytes as text: base64url (signed tokens, the binding cookie, the stored
 * token's ciphertext), standard base64 (keys in settings, webhook signatures) and hex. Plain Web APIs
 * only, so `token-crypto.ts`, which other services may copy, can import it as it is.
 */

// The runtime's own codecs where it has them (Workers: Uint8Array.toBase64 / fromBase64 / toHex), not
// a JS loop per byte; atob/btoa where it does not (Node 20 and 22).
type Base64Options = { alphabet?: 'base64' | 'base64url'; omitPadding?: boolean; lastChunkHandling?: 'strict' }
type NativeCodecs = {
  toBase64?: (this: Uint8Array, options: Base64Options) => string
  toHex?: (this: Uint8Array) => string
  fromBase64?: (text: string, options: Base64Options) => Uint8Array<ArrayBuffer>
}
const nativeToBase64 = (Uint8Array.prototype as NativeCodecs).toBase64
const nativeToHex = (Uint8Array.prototype as NativeCodecs).toHex
const nativeFromBase64 = (Uint8Array as NativeCodecs).fromBase64
const BASE64URL = /^[A-Za-z0-9_-]+$/

const bytesOf = (data: ArrayBuffer | Uint8Array): Uint8Array => (data instanceof Uint8Array ? data : new Uint8Array(data))

const binaryOf = (bytes: Uint8Array): string => {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return binary
}

/** Either alphabet, padding optional, as `atob` reads it; throws on anything else. */
export function decodeBase64(value: string): Uint8Array<ArrayBuffer> {
  const normal = value.replace(/-/g, '+').replace(/_/g, '/')
  const binary = atob(normal + '='.repeat((4 - (normal.length % 4)) % 4))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

/** Standard base64 with padding. */
export function encodeBase64(data: ArrayBuffer | Uint8Array): string {
  const bytes = bytesOf(data)
  return nativeToBase64 ? nativeToBase64.call(bytes, {}) : btoa(binaryOf(bytes))
}

/** Base64url without padding. */
export function encodeBase64Url(data: ArrayBuffer | Uint8Array): string {
  const bytes = bytesOf(data)
  if (nativeToBase64) return nativeToBase64.call(bytes, { alphabet: 'base64url', omitPadding: true })
  return btoa(binaryOf(bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/**
 * Decodes only the one text `encodeBase64Url` would produce for these bytes: no padding, and the
 * unused low bits of the last character zero. Otherwise a signed token would have twins that verify
 * just the same.
 */
export function decodeBase64Url(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (!BASE64URL.test(text)) return undefined
  try {
    if (nativeFromBase64) {
      // 'strict' checks those bits but also demands padding, so the padding is ours, never the input's.
      const padded = text + '='.repeat((4 - (text.length % 4)) % 4)
      return nativeFromBase64(padded, { alphabet: 'base64url', lastChunkHandling: 'strict' })
    }
    const bytes = decodeBase64(text)
    return encodeBase64Url(bytes) === text ? bytes : undefined
  } catch {
    return undefined
  }
}

/** Lower-case hex. */
export function encodeHex(data: ArrayBuffer | Uint8Array): string {
  const bytes = bytesOf(data)
  if (nativeToHex) return nativeToHex.call(bytes)
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}
