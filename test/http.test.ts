import { describe, expect, it } from 'vitest'
import { idString, parseJsonExact } from '../src/http'

describe('parseJsonExact', () => {
  it('keeps integers beyond 2^53 exact, as strings', () => {
    const parsed = parseJsonExact('{"scope": [4, 200, 7543056879933489153], "n": 9007199254740993}') as Record<string, unknown>
    expect(parsed.scope).toEqual([4, 200, '7543056879933489153'])
    expect(parsed.n).toBe('9007199254740993')
  })

  it('returns every integer under an *_id key as its source text', () => {
    const parsed = parseJsonExact('{"advertiser_id": 7012345678901234567, "small_id": 12, "code": 0, "ratio": 1.5}') as Record<string, unknown>
    expect(parsed).toEqual({ advertiser_id: '7012345678901234567', small_id: '12', code: 0, ratio: 1.5 })
  })

  it('leaves quoted ids untouched', () => {
    expect(parseJsonExact('{"advertiser_ids": ["7012345678901234567"]}')).toEqual({ advertiser_ids: ['7012345678901234567'] })
  })
})

describe('idString', () => {
  it('accepts decimal strings and safe integers only', () => {
    expect(idString('7012345678901234567')).toBe('7012345678901234567')
    expect(idString(42)).toBe('42')
    expect(idString(2 ** 60)).toBeUndefined()
    expect(idString('12a')).toBeUndefined()
    expect(idString(-1)).toBeUndefined()
    expect(idString(null)).toBeUndefined()
  })
})

describe('parseJsonExact fast path', () => {
  it('still keeps a bare big integer exact after a quoted long number', () => {
    const parsed = parseJsonExact('{"request_id": "20261795576527870", "data": {"scope": [7543056879933489153]}}') as { data: { scope: unknown[] } }
    expect(parsed.data.scope).toEqual(['7543056879933489153'])
  })
})
