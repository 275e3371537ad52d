/**
 * Small HMAC-SHA256 signed tokens: `<prefix>.<payload>.<mac>`, both parts base64url without padding.
 * The prefix names the kind (its purpose and version), so a token signed as one kind never verifies
 * as another. The OAuth state and the advertiser selection ticket are the two kinds.
 */
import { decodeBase64Url, encodeBase64Url } from './encoding'
import type { AppError } from './errors'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export const sha256 = (value: string): Promise<ArrayBuffer> => crypto.subtle.digest('SHA-256', encoder.encode(value))

/** An HMAC-SHA256 key for a secret setting; the composition root imports each once per isolate. */
export const hmacKey = (secret: string): Promise<CryptoKey> =>
  crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify'])

/** What makes a kind of token: its prefix, its longest accepted form, its payload and its errors. */
export type TokenKind<T extends { exp: number }> = {
  prefix: string
  maxLength: number
  /** The payload when its shape is right, checked only after the MAC verified. */
  read: (payload: unknown) => T | undefined
  invalid: (reason: string) => AppError
  expired: () => AppError
}

export class TokenSigner {
  readonly #key: Promise<CryptoKey>

  constructor(key: Promise<CryptoKey>) {
    this.#key = key
  }

  async sign<T extends { exp: number }>(kind: TokenKind<T>, payload: T): Promise<string> {
    const body = `${kind.prefix}.${encodeBase64Url(encoder.encode(JSON.stringify(payload)))}`
    const mac = await crypto.subtle.sign('HMAC', await this.#key, encoder.encode(body))
    return `${body}.${encodeBase64Url(mac)}`
  }

  /**
   * The payload of a token of this kind whose MAC verifies (Web Crypto's verify compares in constant
   * time) and whose `exp` (seconds) is after `now` (ms); otherwise the kind's error, with the reason.
   * Nothing in the payload is read before the MAC is checked.
   */
  async verify<T extends { exp: number }>(kind: TokenKind<T>, token: string, now: number): Promise<T> {
    if (token.length > kind.maxLength) throw kind.invalid('too_long')
    const parts = token.split('.')
    if (parts.length !== 3 || parts[0] !== kind.prefix) throw kind.invalid('format')
    const payload = decodeBase64Url(parts[1]!)
    const mac = decodeBase64Url(parts[2]!)
    if (!payload || !mac) throw kind.invalid('encoding')
    if (!(await crypto.subtle.verify('HMAC', await this.#key, mac, encoder.encode(`${parts[0]}.${parts[1]}`)))) throw kind.invalid('signature')
    let parsed: unknown
    try {
      parsed = JSON.parse(decoder.decode(payload))
    } catch {
      throw kind.invalid('payload')
    }
    const read = kind.read(parsed)
    if (!read) throw kind.invalid('payload')
    if (Math.floor(now / 1000) >= read.exp) throw kind.expired()
    return read
  }
}
