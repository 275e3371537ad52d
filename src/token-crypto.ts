/**
 * Encryption at rest for the stored TikTok token: AES-256-GCM through Web Crypto, a random 96-bit IV
 * per value, the user id as associated data (a value copied to another user's row does not decrypt),
 * and the key id in the value so keys can rotate.
 *
 *     enc:v1:<key id>:<iv, base64url>:<ciphertext + tag, base64url>
 *
 * Web Crypto and `encoding.ts` only: the two files run as they are in Node 20+, Deno and Workers, so
 * the product's other services can import or copy them to read the token.
 *
 * Keys are configured as `TOKEN_ENCRYPTION_KEY="<id>:<32 bytes, base64>[,<old id>:<old key>…]"`:
 * the first key encrypts, every listed key decrypts.
 */

import { decodeBase64, encodeBase64Url } from './encoding.ts'

export type TokenKey = { id: string; key: CryptoKey }

const PREFIX = 'enc:v1:'
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
const encoder = new TextEncoder()

/** Splits the setting into `[id, raw key]` pairs; throws on anything but 32-byte keys with sane ids. */
export function parseKeySpec(spec: string): [string, Uint8Array<ArrayBuffer>][] {
  const entries = spec
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
  if (entries.length === 0) throw new Error('no keys')
  const seen = new Set<string>()
  return entries.map((entry) => {
    const at = entry.indexOf(':')
    const id = entry.slice(0, at)
    if (at < 1 || !KEY_ID.test(id) || seen.has(id)) throw new Error('each key needs a unique id: <id>:<base64 key>')
    seen.add(id)
    let raw: Uint8Array<ArrayBuffer>
    try {
      raw = decodeBase64(entry.slice(at + 1))
    } catch {
      throw new Error(`key ${id} is not base64`)
    }
    if (raw.byteLength !== 32) throw new Error(`key ${id} must be 32 bytes (AES-256)`)
    return [id, raw]
  })
}

/**
 * Parses and imports the configured keys; throws (synchronously) when the setting is malformed. The
 * Worker imports them once per isolate; a service reading many tokens should do the same.
 */
export function importTokenKeys(spec: string): Promise<TokenKey[]> {
  return Promise.all(
    parseKeySpec(spec).map(async ([id, raw]) => ({
      id,
      key: await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']),
    })),
  )
}

/** Encrypts with the first (current) key. */
export async function encryptToken(token: string, userId: string, keys: TokenKey[] | string): Promise<string> {
  const [current] = typeof keys === 'string' ? await importTokenKeys(keys) : keys
  if (!current) throw new Error('no encryption key')
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const ciphertext = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(userId) }, current.key, encoder.encode(token))
  return `${PREFIX}${current.id}:${encodeBase64Url(iv)}:${encodeBase64Url(ciphertext)}`
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
    const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: decodeBase64(iv), additionalData: encoder.encode(userId) }, key.key, decodeBase64(data))
    return new TextDecoder().decode(plain)
  } catch {
    throw new Error('encrypted token does not decrypt with this key and user')
  }
}
