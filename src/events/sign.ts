/**
 * Standard Webhooks v1 (standardwebhooks.com), the signing side: HMAC-SHA256 over
 * `<webhook-id>.<webhook-timestamp>.<body>` keyed with the bytes of a `whsec_<base64>` secret, sent
 * as `webhook-signature: v1,<base64>`. Receivers verify it with any Standard Webhooks library.
 */
import { decodeBase64, encodeBase64 } from '../encoding'

const PREFIX = 'whsec_'
// The standard's range for a secret's key.
const MIN_KEY_BYTES = 24
const MAX_KEY_BYTES = 64

const encoder = new TextEncoder()

/** The key of a `whsec_<base64>` secret; undefined when the setting is not one. */
export function webhookKeyBytes(secret: string): Uint8Array | undefined {
  if (!secret.startsWith(PREFIX)) return undefined
  const text = secret.slice(PREFIX.length)
  // Padded standard base64 only, as the reference libraries decode it: atob alone would also take
  // spaces and missing padding, and the receiver would then verify with other bytes than these.
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined
  let bytes: Uint8Array
  try {
    bytes = decodeBase64(text)
  } catch {
    return undefined
  }
  // One spelling per key: `…+jt=` decodes to the same bytes as `…+js=`, and a check that compares
  // settings (the committed sandbox secret) must not be passed by a twin.
  if (encodeBase64(bytes) !== text) return undefined
  return bytes.length >= MIN_KEY_BYTES && bytes.length <= MAX_KEY_BYTES ? bytes : undefined
}

/** The HMAC key of a `whsec_` secret; the composition root imports it once per isolate. */
export function webhookSigningKey(secret: string): Promise<CryptoKey> {
  const bytes = webhookKeyBytes(secret)
  if (!bytes) return Promise.reject(new Error('not a whsec_ secret'))
  return crypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
}

/** The three Standard Webhooks headers for one delivery of `body` (the exact bytes to send). */
export async function webhookHeaders(key: Promise<CryptoKey> | CryptoKey, id: string, timestamp: number, body: string): Promise<Record<string, string>> {
  const mac = await crypto.subtle.sign('HMAC', await key, encoder.encode(`${id}.${timestamp}.${body}`))
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1,${encodeBase64(mac)}`,
  }
}
