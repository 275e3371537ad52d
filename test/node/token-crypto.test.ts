// decryptToken is meant for the product's other services too: the same file, on Node.
import { describe, expect, it } from 'vitest'
import { decryptToken, encryptToken } from '../../src/token-crypto.ts'

describe('token-crypto on Node', () => {
  it('decrypts what it encrypts, bound to the user', async () => {
    const spec = `k1:${Buffer.alloc(32, 7).toString('base64')}`
    const sealed = await encryptToken('tok-123456789', 'user-a', spec)
    expect(await decryptToken(sealed, 'user-a', spec)).toBe('tok-123456789')
    await expect(decryptToken(sealed, 'user-b', spec)).rejects.toThrow()
  })
})
