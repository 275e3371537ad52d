import { describe, expect, it, vi } from 'vitest'
import { formatLine, Logger, secretForms } from '../src/log'

describe('formatLine', () => {
  it('redacts values under secret-like keys, at any depth', () => {
    const line = formatLine(
      { event: 'x', access_token: 'abc', nested: { secret: 's', Authorization: 'Bearer z', cookie: 'c', auth_code: 'q', state: 'st' } },
      [],
    )
    const parsed = JSON.parse(line)
    expect(parsed.access_token).toBe('[redacted]')
    expect(parsed.nested).toEqual({ secret: '[redacted]', Authorization: '[redacted]', cookie: '[redacted]', auth_code: '[redacted]', state: '[redacted]' })
    expect(parsed.event).toBe('x')
  })

  it('keeps TikTok codes and request ids, which are not secrets', () => {
    const parsed = JSON.parse(formatLine({ tiktok_code: 40100, tiktok_request_id: '2026abc', code: 'tiktok_rate_limited' }, []))
    expect(parsed).toEqual({ tiktok_code: 40100, tiktok_request_id: '2026abc', code: 'tiktok_rate_limited' })
  })

  it('removes known secret values wherever they appear, raw, JSON-escaped or URL-encoded', () => {
    const secret = 'p@ss"word/with+chars'
    const line = formatLine(
      {
        error: new Error(`failed for https://x.test/?secret=${encodeURIComponent(secret)}`),
        message: `got ${secret} back`,
      },
      secretForms([secret]),
    )
    expect(line).not.toContain(JSON.stringify(secret).slice(1, -1))
    expect(line).not.toContain(encodeURIComponent(secret))
    expect(line.match(/\[redacted\]/g)).toHaveLength(2)
    expect(JSON.parse(line).error.message).toBe('failed for https://x.test/?secret=[redacted]')
  })

  it('ignores values too short to be secrets', () => {
    expect(formatLine({ a: 'on' }, secretForms(['on']))).toBe('{"a":"on"}')
  })
})

describe('Logger', () => {
  it('writes one JSON line per event through console.log, scrubbing protected values', () => {
    const lines: string[] = []
    vi.spyOn(console, 'log').mockImplementation((line: unknown) => {
      lines.push(String(line))
    })
    const log = new Logger('req-1', ['configured-secret-value', undefined])
    log.protect('token-received-later')
    log.warn('tiktok.advertisers', { error: new Error('GET ?secret=configured-secret-value failed with token-received-later') })
    expect(lines).toHaveLength(1)
    const parsed = JSON.parse(lines[0]!)
    expect(parsed).toMatchObject({ level: 'warn', event: 'tiktok.advertisers', request_id: 'req-1' })
    expect(parsed.error.message).toBe('GET ?secret=[redacted] failed with [redacted]')
    vi.restoreAllMocks()
  })
})
