/**
 * Encryption at rest for the stored TikTok token: AES-256-GCM through Web Crypto, a random 96-bit IV
 * per value, the user id as associated data (a value copied to another user's row does not decrypt),
 * and the key id in the value so keys can rotate.
 *
 *     enc:v1:<key id>:<iv, base64url>:<ciphertext + tag, base64url>
 *
 * Self-contained on purpose (Web Crypto, atob/btoa, TextEncoder only): the same file runs in Node 20+,
 * Deno and Workers, so the product's other services can import or copy it to read the token. For the
 * same reason it holds the Worker's one base64url codec, which the signed tokens use too.
 *
 * Keys are configured as `TOKEN_ENCRYPTION_KEY="<id>:<32 bytes, base64>[,<old id>:<old key>…]"`:
 * the first key encrypts, every listed key decrypts.
 */

export type TokenKey = { id: string; key: CryptoKey }

const PREFIX = 'enc:v1:'
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
const encoder = new TextEncoder()

// The runtime's own base64 where it has one (Workers: Uint8Array.toBase64 / fromBase64), not a JS
// loop per byte; atob/btoa where it does not (Node 20 and 22).
type Base64Options = { alphabet: 'base64url'; omitPadding?: boolean; lastChunkHandling?: 'strict' }
type NativeBase64 = {
  toBase64?: (this: Uint8Array, options: Base64Options) => string
  fromBase64?: (text: string, options: Base64Options) => Uint8Array<ArrayBuffer>
}
const nativeToBase64 = (Uint8Array.prototype as NativeBase64).toBase64
const nativeFromBase64 = (Uint8Array as NativeBase64).fromBase64
const BASE64URL = /^[A-Za-z0-9_-]+$/

/** Either alphabet, padding optional, as `atob` reads it; throws on anything else. */
const fromBase64 = (value: string): Uint8Array<ArrayBuffer> => {
  const normal = value.replace(/-/g, '+').replace(/_/g, '/')
  const binary = atob(normal + '='.repeat((4 - (normal.length % 4)) % 4))
  return Uint8Array.from(binary, (c) => c.charCodeAt(0))
}

/** Base64url without padding. */
export function encodeBase64Url(data: ArrayBuffer | Uint8Array): string {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data)
  if (nativeToBase64) return nativeToBase64.call(bytes, { alphabet: 'base64url', omitPadding: true })
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
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
    const bytes = fromBase64(text)
    return encodeBase64Url(bytes) === text ? bytes : undefined
  } catch {
    return undefined
  }
}

/** Splits the setting into `[id, raw key]` pairs; throws on anything but 32-byte keys with sane ids. */
export function parseKeySpec(spec: string): [string, Uint8Array<ArrayBuffer>][] {
  const entries = spec.split(',').map((part) => part.trim()).filter(Boolean)
  if (entries.length === 0) throw new Error('no keys')
  const seen = new Set<string>()
  return entries.map((entry) => {
    const at = entry.indexOf(':')
    const id = entry.slice(0, at)
    if (at < 1 || !KEY_ID.test(id) || seen.has(id)) throw new Error('each key needs a unique id: <id>:<base64 key>')
    seen.add(id)
    let raw: Uint8Array<ArrayBuffer>
    try {
      raw = fromBase64(entry.slice(at + 1))
    } catch {
      throw new Error(`key ${id} is not base64`)
    }
    if (raw.byteLength !== 32) throw new Error(`key ${id} must be 32 bytes (AES-256)`)
    return [id, raw]
  })
}

const imported = new Map<string, Promise<TokenKey[]>>()

/**
 * Parses and imports the configured keys once per isolate or process for each setting text; throws
 * (synchronously, before caching anything) when the setting is malformed.
 */
export function importTokenKeys(spec: string): Promise<TokenKey[]> {
  let keys = imported.get(spec)
  if (!keys) {
    keys = Promise.all(
      parseKeySpec(spec).map(async ([id, raw]) => ({
        id,
        key: await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']),
      })),
    )
    imported.set(spec, keys)
  }
  return keys
}

/** Encrypts with the first (current) key. */
export async function encryptToken(token: string, userId: string, keys: TokenKey[] | string): Promise<string> {
  const [current] = typeof keys === 'string' ? await importTokenKeys(keys) : keys
  if (!current) throw new Error('no encryption key')
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(userId) }, current.key, encoder.encode(token))
  return `${PREFIX}${current.id}:${encodeBase64Url(iv)}:${encodeBase64Url(sealed)}`
}

/** True for a value written by `encryptToken`; anything else is a plaintext token. */
export const isEncryptedToken = (stored: string): boolean => stored.startsWith(PREFIX)

/**
 * The token in `stored`, for the row of `userId`. Plaintext values are returned as they are, so
 * readers work before and after encryption is switched on. Throws when the key id is unknown or
 * the value, the key or the user does not match.
 */
export async function decryptToken(stored: string, userId: string, keys: TokenKey[] | string): Promise<string> {
  if (!isEncryptedToken(stored)) return stored
  const [id, iv, data, extra] = stored.slice(PREFIX.length).split(':')
  if (!id || !iv || !data || extra !== undefined) throw new Error('malformed encrypted token')
  const list = typeof keys === 'string' ? await importTokenKeys(keys) : keys
  const key = list.find((k) => k.id === id)
  if (!key) throw new Error(`no key with id ${id}`)
  try {
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromBase64(iv), additionalData: encoder.encode(userId) },
      key.key,
      fromBase64(data),
    )
    return new TextDecoder().decode(plain)
  } catch {
    throw new Error('encrypted token does not decrypt with this key and user')
  }
}
