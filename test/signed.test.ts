import { describe, expect, it } from 'vitest'
import { AppError } from '../src/errors'
import { seal, unseal } from '../src/signed'
import { mintState, verifyState } from '../src/state'
import { decodeBase64Url } from '../src/token-crypto'

const SECRET = 'unit-test-signed-secret-0123456789abcdef'
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
  it('item 10: accepts exactly one encoding of the MAC (flipped unused bits do not verify)', async () => {
    const token = await seal(SECRET, 'test', { a: 1 })
    const twin = flipUnusedBit(token)
    expect(twin).not.toBe(token)
    // Same bytes, different text: only strict decoding tells them apart.
    expect(decodeBase64Url(twin.split('.')[2]!)).toBeUndefined()
    expect(await unseal(SECRET, 'test', token, 1024)).toEqual({ payload: { a: 1 } })
    expect(await unseal(SECRET, 'test', twin, 1024)).toEqual({ reason: 'encoding' })
  })

  it('item 10: verifyState refuses a state whose MAC has its unused bits flipped', async () => {
    const { state } = await mintState(SECRET, { userId: 'user-1', origin: 'https://app.example.com', returnTo: '/profile' })
    expect(state.split('.')[2]).toHaveLength(43)
    await expect(verifyState(SECRET, state)).resolves.toMatchObject({ u: 'user-1' })
    const error = await verifyState(SECRET, flipUnusedBit(state)).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AppError)
    expect(error).toMatchObject({ code: 'invalid_state', detail: { reason: 'encoding' } })
  })

  it('item 10: decodes canonical unpadded base64url of any length, and nothing else', () => {
    const bytes = Uint8Array.from([0xfb, 0xef, 0xbe, 0xff, 0x00, 0x7f])
    for (let n = 1; n <= bytes.length; n++) {
      const text = btoa(String.fromCharCode(...bytes.subarray(0, n))).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
      expect(Array.from(decodeBase64Url(text) ?? []), text).toEqual(Array.from(bytes.subarray(0, n)))
    }
    // Non-zero unused bits, padding, impossible lengths, the other alphabet.
    for (const text of ['AR', 'AQJ', 'AQ==', 'AQI=', 'A', 'AQIDB', 'AQ+', 'AQ/', '']) {
      expect(decodeBase64Url(text), text).toBeUndefined()
    }
  })
})
