import { describe, expect, it } from 'vitest'
import { decryptToken, encryptToken, importTokenKeys, parseKeySpec } from '../src/token-crypto'

const key = (byte: number) => btoa(String.fromCharCode(...new Uint8Array(32).fill(byte)))
const K1 = `k1:${key(1)}`
const K2 = `k2:${key(2)}`
const USER = 'user-1'
const TOKEN = '4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f'

describe('token encryption', () => {
  it('round-trips, with a fresh IV each time', async () => {
    const a = await encryptToken(TOKEN, USER, K1)
    const b = await encryptToken(TOKEN, USER, K1)
    expect(a).not.toBe(b)
    expect(a).not.toContain(TOKEN)
    expect(await decryptToken(a, USER, K1)).toBe(TOKEN)
  })

  it('fails with the wrong key, the wrong user, or a tampered value', async () => {
    const sealed = await encryptToken(TOKEN, USER, K1)
    await expect(decryptToken(sealed, USER, `k1:${key(9)}`)).rejects.toThrow(/does not decrypt/)
    await expect(decryptToken(sealed, 'user-2', K1)).rejects.toThrow(/does not decrypt/)
    const parts = sealed.split(':')
    const data = parts[4]!
    parts[4] = (data[0] === 'A' ? 'B' : 'A') + data.slice(1)
    await expect(decryptToken(parts.join(':'), USER, K1)).rejects.toThrow(/does not decrypt/)
    await expect(decryptToken(sealed, USER, K2)).rejects.toThrow(/no key with id k1/)
    await expect(decryptToken('enc:v1:k1:abc', USER, K1)).rejects.toThrow(/malformed/)
  })

  it('rotates: new values use the first key, old key ids still decrypt', async () => {
    const old = await encryptToken(TOKEN, USER, K1)
    const rotated = `${K2},${K1}`
    const fresh = await encryptToken(TOKEN, USER, rotated)
    expect(fresh.startsWith('enc:v1:k2:')).toBe(true)
    expect(await decryptToken(old, USER, rotated)).toBe(TOKEN)
    expect(await decryptToken(fresh, USER, await importTokenKeys(rotated))).toBe(TOKEN)
  })

  it('passes plaintext tokens through, so readers work before and after switching it on', async () => {
    expect(await decryptToken(TOKEN, USER, K1)).toBe(TOKEN)
  })

  it('refuses keys that are not 32 bytes or lack unique ids', () => {
    expect(() => parseKeySpec(`k1:${btoa('short')}`)).toThrow(/32 bytes/)
    expect(() => parseKeySpec(key(1))).toThrow(/unique id/)
    expect(() => parseKeySpec(`${K1},${K1}`)).toThrow(/unique id/)
    expect(() => parseKeySpec('')).toThrow()
  })
})
