import { Webhook } from 'standardwebhooks'
import { describe, expect, it } from 'vitest'
import { webhookHeaders, webhookKeyBytes, webhookSigningKey } from '../../src/events/sign'

const bytes = (n: number, fill = 0x5a) => String.fromCharCode(...new Uint8Array(n).fill(fill))
const SECRET = `whsec_${btoa(bytes(32))}`

describe('webhookKeyBytes', () => {
  it('takes whsec_ + padded standard base64 of 24 to 64 bytes', () => {
    expect(webhookKeyBytes(SECRET)).toEqual(new Uint8Array(32).fill(0x5a))
    expect(webhookKeyBytes(`whsec_${btoa(bytes(24))}`)).toHaveLength(24)
    expect(webhookKeyBytes(`whsec_${btoa(bytes(64))}`)).toHaveLength(64)
  })

  it.each([
    ['no prefix', btoa(bytes(32))],
    ['another prefix', `whsk_${btoa(bytes(32))}`],
    ['too short', `whsec_${btoa(bytes(23))}`],
    ['too long', `whsec_${btoa(bytes(65))}`],
    ['missing padding', `whsec_${btoa(bytes(32)).replace(/=+$/, '')}`],
    ['base64url alphabet', `whsec_${btoa(bytes(33, 0xfb)).replaceAll('+', '-').replaceAll('/', '_')}`],
    ['inner whitespace', `whsec_${btoa(bytes(32)).slice(0, 8)} ${btoa(bytes(32)).slice(8)}`],
    ['empty', 'whsec_'],
  ])('refuses %s', (_, secret) => {
    expect(webhookKeyBytes(secret)).toBeUndefined()
  })
})

describe('webhookHeaders', () => {
  it('matches the Standard Webhooks specification’s own test vector', async () => {
    // From the specification, the vector every Standard Webhooks library tests against.
    const headers = await webhookHeaders(
      webhookSigningKey('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'),
      'msg_p5jXN8AQM9LWM0D4loKWxJek',
      1614265330,
      '{"test": 2432232314}',
    )
    expect(headers).toEqual({
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
      'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    })
  })

  it('signs what the reference library verifies, for any body', async () => {
    for (const body of ['{}', '{"name":"Brand ✓ — ü","id":"7012345678901234567"}', JSON.stringify({ pad: 'x'.repeat(100_000) })]) {
      const headers = await webhookHeaders(webhookSigningKey(SECRET), 'f3b0c4a2-1d2e-4f5a-8b9c-0d1e2f3a4b5c', Math.floor(Date.now() / 1000), body)
      expect(headers['webhook-id']).toBe('f3b0c4a2-1d2e-4f5a-8b9c-0d1e2f3a4b5c')
      expect(new Webhook(SECRET).verify(body, headers)).toEqual(JSON.parse(body))
    }
  })

  it('binds the id and the timestamp: changing either breaks the signature', async () => {
    const now = Math.floor(Date.now() / 1000)
    const headers = await webhookHeaders(webhookSigningKey(SECRET), 'id-1', now, '{"a":1}')
    const wh = new Webhook(SECRET)
    expect(() => wh.verify('{"a":1}', { ...headers, 'webhook-id': 'id-2' })).toThrow()
    expect(() => wh.verify('{"a":1}', { ...headers, 'webhook-timestamp': String(now - 1) })).toThrow()
    expect(wh.verify('{"a":1}', headers)).toEqual({ a: 1 })
  })
})
