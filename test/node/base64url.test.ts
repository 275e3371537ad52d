// Node has no Uint8Array.fromBase64 yet: the atob path must be exactly as strict as workerd's own.
import { describe, expect, it } from 'vitest'
import { decodeBase64Url, encodeBase64Url } from '../../src/encoding.ts'

describe('base64url on Node', () => {
  it('round-trips every length and refuses every other encoding of the same bytes', () => {
    const bytes = Uint8Array.from([0xfb, 0xef, 0xbe, 0xff, 0x00, 0x7f])
    for (let n = 1; n <= bytes.length; n++) {
      const text = encodeBase64Url(bytes.subarray(0, n))
      expect(text).toBe(Buffer.from(bytes.subarray(0, n)).toString('base64url'))
      expect(Array.from(decodeBase64Url(text) ?? []), text).toEqual(Array.from(bytes.subarray(0, n)))
    }
    for (const text of ['AR', 'AQJ', 'AQ==', 'AQI=', 'A', 'AQIDB', 'AQ+', 'AQ/', '', 'AQ I']) {
      expect(decodeBase64Url(text), text).toBeUndefined()
    }
  })
})
