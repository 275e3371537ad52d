import { describe, expect, it } from 'vitest'
import { AppError } from '../src/errors'
import { assertAllowedOrigin, parseReturnTo } from '../src/origin'

const ORIGIN = 'https://app.example.com'
const codeOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (error) {
    return error instanceof AppError ? error.code : 'not-an-AppError'
  }
  return 'ok'
}

describe('parseReturnTo', () => {
  it('defaults to /profile and keeps same-origin paths with query and fragment', () => {
    expect(parseReturnTo(undefined, ORIGIN)).toBe('/profile')
    expect(parseReturnTo('/settings/integrations?tab=ads#tiktok', ORIGIN)).toBe('/settings/integrations?tab=ads#tiktok')
    expect(parseReturnTo('/a/../b', ORIGIN)).toBe('/b')
  })

  it.each([
    '//evil.com',
    '//evil.com/profile',
    'https://evil.com',
    'http://app.example.com/x',
    '/\\evil.com',
    '\\\\evil.com',
    '/\tevil',
    ' /profile',
    'javascript:alert(1)',
    'profile',
    '',
    `/${'a'.repeat(600)}`,
  ])('refuses %j', (value) => {
    expect(codeOf(() => parseReturnTo(value, ORIGIN))).toBe('invalid_return_to')
  })
})

describe('parseReturnTo checks the normalised path it signs', () => {
  it.each([
    '/.//evil.com',
    '/%2e//evil.com',
    '/%2E//evil.com',
    '/a/..//evil.com',
    '/..//evil.com',
    '/a/%2e%2e//evil.com',
    '/.%2e//evil.com',
    '/a/b/../..//evil.com/profile?x=1',
    '/%2F%2Fevil.com',
    '/%2f%2fevil.com',
    '/%5Cevil.com',
    '/%5cevil.com',
    '/profile%2F..%2F..%2F/evil.com',
  ])('refuses %j (dot segments or an encoded separator that become another host)', (value) => {
    expect(codeOf(() => parseReturnTo(value, ORIGIN))).toBe('invalid_return_to')
  })

  it('still accepts ordinary paths, normalised', () => {
    expect(parseReturnTo('/profile?tab=x#y', ORIGIN)).toBe('/profile?tab=x#y')
    expect(parseReturnTo('/a/../b', ORIGIN)).toBe('/b')
    expect(parseReturnTo('/a/./b/', ORIGIN)).toBe('/a/b/')
    expect(parseReturnTo('/..', ORIGIN)).toBe('/')
    expect(parseReturnTo('/x#//evil.com', ORIGIN)).toBe('/x#//evil.com')
    expect(parseReturnTo('/café menu', ORIGIN)).toBe('/caf%C3%A9%20menu')
  })

  it('limits the length of what is signed, not only of what was sent', () => {
    // 200 characters that percent-encode to 1,200.
    expect(codeOf(() => parseReturnTo(`/${'é'.repeat(200)}`, ORIGIN))).toBe('invalid_return_to')
  })
})

describe('assertAllowedOrigin', () => {
  const allowed = [ORIGIN, 'https://example.com']
  it('matches exactly, with no prefix, suffix or scheme games', () => {
    expect(codeOf(() => assertAllowedOrigin(ORIGIN, allowed))).toBe('ok')
    expect(codeOf(() => assertAllowedOrigin('https://example.com', allowed))).toBe('ok')
    for (const origin of ['https://app.example.com.evil.com', 'https://evilapp.example.com', 'http://app.example.com', 'https://app.example.com:8443']) {
      expect(
        codeOf(() => assertAllowedOrigin(origin, allowed)),
        origin,
      ).toBe('origin_not_allowed')
    }
  })

  it('requires a present Origin header to name the same origin', () => {
    expect(codeOf(() => assertAllowedOrigin(ORIGIN, allowed, ORIGIN))).toBe('ok')
    expect(codeOf(() => assertAllowedOrigin(ORIGIN, allowed, 'https://example.com'))).toBe('origin_not_allowed')
    expect(codeOf(() => assertAllowedOrigin(ORIGIN, allowed, 'null'))).toBe('origin_not_allowed')
  })
})
