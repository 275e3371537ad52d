import { describe, expect, it } from 'vitest'
import { AppError } from '../src/errors'
import { hmacKey, TokenSigner } from '../src/signed'
import { bindingMatches, mintState, STATE, STATE_TTL_SECONDS } from '../src/state'

const SECRET = 'unit-test-state-secret-0123456789abcdef'
const input = { userId: 'user-1', origin: 'https://app.example.com', returnTo: '/profile' }
const signerOf = (secret: string) => new TokenSigner(hmacKey(secret))
const mint = (now = Date.now()) => mintState(signerOf(SECRET), input, now)
const verifyState = (secret: string, state: string, now = Date.now()) => signerOf(secret).verify(STATE, state, now)

const codeOf = async (promise: Promise<unknown>) => {
  try {
    await promise
  } catch (error) {
    return error instanceof AppError ? error.code : 'not-an-AppError'
  }
  return 'resolved'
}

const flip = (s: string, at: number) => s.slice(0, at) + (s[at] === 'A' ? 'B' : 'A') + s.slice(at + 1)

describe('state', () => {
  it('round-trips a URL-safe, versioned, signed payload', async () => {
    const { state, binding, expiresAt } = await mint()
    expect(state).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
    const payload = await verifyState(SECRET, state)
    expect(payload).toMatchObject({ v: 1, p: 'tiktok_business', u: 'user-1', o: input.origin, r: '/profile' })
    expect(payload.exp - payload.iat).toBe(STATE_TTL_SECONDS)
    expect(expiresAt.getTime()).toBe(payload.exp * 1000)
    expect(await bindingMatches(payload.n, binding)).toBe(true)
  })

  it('holds a fresh nonce of 256 bits each time, and the cookie value only as a hash', async () => {
    const a = await mint()
    const b = await mint()
    expect(a.state).not.toBe(b.state)
    expect(a.binding).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(a.state).not.toContain(a.binding)
  })

  it('rejects a tampered payload, a tampered signature, another key and other formats', async () => {
    const { state } = await mint()
    const [v, payload, mac] = state.split('.') as [string, string, string]
    expect(await codeOf(verifyState(SECRET, `${v}.${flip(payload, 5)}.${mac}`))).toBe('invalid_state')
    expect(await codeOf(verifyState(SECRET, `${v}.${payload}.${flip(mac, 3)}`))).toBe('invalid_state')
    expect(await codeOf(verifyState('another-secret-of-sufficient-length-000', state))).toBe('invalid_state')
    expect(await codeOf(verifyState(SECRET, `v2.${payload}.${mac}`))).toBe('invalid_state')
    expect(await codeOf(verifyState(SECRET, `${v}.${payload}`))).toBe('invalid_state')
    expect(await codeOf(verifyState(SECRET, 'state=your_custom_params'))).toBe('invalid_state')
    expect(await codeOf(verifyState(SECRET, `${state}${'A'.repeat(3000)}`))).toBe('invalid_state')
  })

  it('expires after ten minutes', async () => {
    const issued = Date.now() - STATE_TTL_SECONDS * 1000 - 1000
    const { state } = await mint(issued)
    expect(await codeOf(verifyState(SECRET, state))).toBe('state_expired')
    expect(await codeOf(verifyState(SECRET, state, issued + 1000))).toBe('resolved')
  })

  it('binds to the cookie value only', async () => {
    const a = await mint()
    const b = await mint()
    const payload = await verifyState(SECRET, a.state)
    expect(await bindingMatches(payload.n, b.binding)).toBe(false)
    expect(await bindingMatches(payload.n, undefined)).toBe(false)
    expect(await bindingMatches(payload.n, '')).toBe(false)
    expect(await bindingMatches(payload.n, payload.n)).toBe(false)
  })
})
