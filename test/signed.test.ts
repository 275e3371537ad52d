import { describe, expect, it } from 'vitest'
import { AppError } from '../src/errors'
import { decodeBase64Url } from '../src/encoding'
import { hmacKey, type TokenKind, TokenSigner } from '../src/signed'
import { mintState, STATE } from '../src/state'

const SECRET = 'unit-test-signed-secret-0123456789abcdef'
const signer = new TokenSigner(hmacKey(SECRET))
/** A kind of token for these tests only: any object with an `exp` in the future. */
const TEST: TokenKind<{ a: number; exp: number }> = {
  prefix: 'test',
  maxLength: 1024,
  read: (v) => (typeof v === 'object' && v !== null && 'exp' in v ? (v as { a: number; exp: number }) : undefined),
  invalid: (reason) => new AppError('invalid_request', { detail: { reason } }),
  expired: () => new AppError('invalid_request', { detail: { reason: 'expired' } }),
}
const reasonOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'verified',
    (e: unknown) => (e as AppError).detail?.reason,
  )
const verifyState = (_secret: string, state: string) => signer.verify(STATE, state, Date.now())
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

/**
 * The same token with the last character's lowest bit flipped. A 32-byte MAC is 43 characters whose
 * last one carries 4 bits, so this changes only bits that decode to nothing.
 */
const flipUnusedBit = (token: string): string => {
  const last = token.at(-1)!
  return token.slice(0, -1) + ALPHABET[ALPHABET.indexOf(last) ^ 1]
}

describe('signed tokens', () => {
  it('accepts exactly one encoding of the MAC (flipped unused bits do not verify)', async () => {
    const payload = { a: 1, exp: Math.floor(Date.now() / 1000) + 60 }
    const token = await signer.sign(TEST, payload)
    const twin = flipUnusedBit(token)
    expect(twin).not.toBe(token)
    // Same bytes, different text: only strict decoding tells them apart.
    expect(decodeBase64Url(twin.split('.')[2]!)).toBeUndefined()
    expect(await signer.verify(TEST, token, Date.now())).toEqual(payload)
    expect(await reasonOf(signer.verify(TEST, twin, Date.now()))).toBe('encoding')
  })

  it('verifyState refuses a state whose MAC has its unused bits flipped', async () => {
    const { state } = await mintState(signer, { userId: 'user-1', origin: 'https://app.example.com', returnTo: '/profile' }, Date.now())
    expect(state.split('.')[2]).toHaveLength(43)
    await expect(verifyState(SECRET, state)).resolves.toMatchObject({ u: 'user-1' })
    const error = await verifyState(SECRET, flipUnusedBit(state)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AppError)
    expect(error).toMatchObject({ code: 'invalid_state', detail: { reason: 'encoding' } })
  })

  it('decodes canonical unpadded base64url of any length, and nothing else', () => {
    const bytes = Uint8Array.from([0xfb, 0xef, 0xbe, 0xff, 0x00, 0x7f])
    for (let n = 1; n <= bytes.length; n++) {
      const text = btoa(String.fromCharCode(...bytes.subarray(0, n)))
        .replace(/=+$/, '')
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
      expect(Array.from(decodeBase64Url(text) ?? []), text).toEqual(Array.from(bytes.subarray(0, n)))
    }
    // Non-zero unused bits, padding, impossible lengths, the other alphabet.
    for (const text of ['AR', 'AQJ', 'AQ==', 'AQI=', 'A', 'AQIDB', 'AQ+', 'AQ/', '']) {
      expect(decodeBase64Url(text), text).toBeUndefined()
    }
  })
})
