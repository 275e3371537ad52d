import { sign } from 'hono/jwt'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createSigningKey } from '../../sandbox/supabase'
import { APP_ORIGIN, call, type Harness, harness, OTHER_ORIGIN, secretsOf, start, testEnv, USER_ID } from '../harness'

let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  expect(h.unexpected).toEqual([])
})

const decodeState = (state: string) => {
  const part = state.split('.')[1]!
  return JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>
}

const claims = (overrides: Record<string, unknown> = {}) => {
  const now = Math.floor(Date.now() / 1000)
  return { iss: `${testEnv.SUPABASE_URL}/auth/v1`, sub: USER_ID, aud: 'authenticated', role: 'authenticated', iat: now, exp: now + 3600, ...overrides }
}

const b64url = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')

describe('POST /api/tiktok/oauth/start', () => {
  it('answers the TikTok authorize URL for this origin, with a signed state and a binding cookie', async () => {
    const before = Date.now()
    const s = await start(h, { body: { return_to: '/settings/integrations?tab=ads' } })
    expect(s.response.status).toBe(200)
    expect(s.response.headers.get('cache-control')).toBe('no-store')
    expect(s.response.headers.get('x-request-id')).toMatch(/^[\w-]+$/)

    expect(s.authorizeUrl.origin + s.authorizeUrl.pathname).toBe('https://business-api.tiktok.com/portal/auth')
    expect(s.authorizeUrl.searchParams.get('app_id')).toBe('test-app-id')
    expect(s.authorizeUrl.searchParams.get('redirect_uri')).toBe(`${APP_ORIGIN}/oauth/callback`)
    expect(s.state).toMatch(/^[A-Za-z0-9_.-]+$/)
    expect(decodeState(s.state)).toMatchObject({ v: 1, p: 'tiktok_business', u: USER_ID, o: APP_ORIGIN, r: '/settings/integrations?tab=ads' })

    const expiresAt = Date.parse(String(s.body.expires_at))
    expect(expiresAt).toBeGreaterThanOrEqual(before + 590_000)
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 600_000)

    const cookie = s.response.headers.get('set-cookie') ?? ''
    // Its attributes are item 3's test (hardening.test.ts); here, the value and its lifetime.
    expect(cookie).toMatch(/^__Host-tiktok_oauth_binding=[A-Za-z0-9_-]{43};/)
    expect(cookie).toContain('Max-Age=600')
    // At most the JWKS (cached per isolate) was fetched; TikTok is not contacted before the user authorizes.
    expect(h.outbound.filter((r) => new URL(r.url).pathname !== '/auth/v1/.well-known/jwks.json')).toEqual([])
    expect(h.logs.some((l) => JSON.parse(l).event === 'oauth.start')).toBe(true)
    for (const secret of [...(await secretsOf(h)), s.cookie, s.state]) {
      expect(h.logs.join('\n')).not.toContain(secret)
    }
  })

  it('defaults return_to to /profile and accepts an empty body', async () => {
    const s = await start(h)
    expect(s.response.status).toBe(200)
    expect(decodeState(s.state).r).toBe('/profile')
  })

  it('uses the second product domain as its own redirect origin', async () => {
    const s = await start(h, { origin: OTHER_ORIGIN })
    expect(s.response.status).toBe(200)
    expect(s.authorizeUrl.searchParams.get('redirect_uri')).toBe(`${OTHER_ORIGIN}/oauth/callback`)
    expect(decodeState(s.state).o).toBe(OTHER_ORIGIN)
  })

  it('caches the signing keys across requests', async () => {
    // A project URL of its own, so the cache starts empty for it whatever ran before.
    const project = `https://cache-${crypto.randomUUID()}.supabase.co`
    const token = await h.supabase.signAccessToken(USER_ID, { iss: `${project}/auth/v1` })
    const isolate = { SUPABASE_URL: project }
    const post = () =>
      call(`${APP_ORIGIN}/api/tiktok/oauth/start`, { method: 'POST', headers: { authorization: `Bearer ${token}`, origin: APP_ORIGIN } }, isolate)
    expect((await post()).status).toBe(200)
    expect((await post()).status).toBe(200)
    expect(h.outbound.map((r) => r.url)).toEqual([`${project}/auth/v1/.well-known/jwks.json`])
  })

  describe('refuses a bad access token with 401 unauthorized', () => {
    const cases: [string, string, () => Promise<string>][] = [
      ['no token', 'no_token', async () => ''],
      ['garbage', 'malformed', async () => 'not-a-jwt'],
      ['expired', 'JwtTokenExpired', () => h.supabase.signAccessToken(USER_ID, { exp: Math.floor(Date.now() / 1000) - 10 })],
      ['no exp', 'no_exp', () => h.supabase.signAccessToken(USER_ID, { exp: undefined })],
      ['wrong audience', 'JwtTokenAudience', () => h.supabase.signAccessToken(USER_ID, { aud: 'anon' })],
      ['wrong issuer', 'JwtTokenIssuer', () => h.supabase.signAccessToken(USER_ID, { iss: 'https://evil.supabase.co/auth/v1' })],
      ['no subject', 'sub', () => h.supabase.signAccessToken(USER_ID, { sub: undefined })],
      ['another key with the same kid', 'JwtTokenSignatureMismatched', async () => sign(claims(), (await createSigningKey('sandbox-key-1')).privateJwk)],
      ['an unknown kid', 'unknown_kid', async () => sign(claims(), (await createSigningKey('unknown-kid')).privateJwk)],
      ['alg none', 'algorithm', async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims())}.`],
      ['HS256 without a configured JWT secret', 'hs256_not_configured', () => sign(claims(), 'x'.repeat(40), 'HS256')],
      ['HS512', 'algorithm', () => sign(claims(), 'x'.repeat(40), 'HS512')],
    ]
    it.each(cases)('%s', async (_name, reason, token) => {
      const value = await token()
      const res = await call(`${APP_ORIGIN}/api/tiktok/oauth/start`, {
        method: 'POST',
        headers: value ? { authorization: `Bearer ${value}` } : {},
      })
      expect(res.status).toBe(401)
      const body = (await res.json()) as Record<string, unknown>
      expect(body).toMatchObject({ success: false, code: 'unauthorized' })
      expect(String(body.error)).toMatch(/sign in/i)
      expect(res.headers.get('set-cookie')).toBeNull()
      if (value) expect(h.logs.join('\n')).not.toContain(value)
      // Refused for the reason under test, not an earlier one.
      expect(h.logs.map((l) => JSON.parse(l)).find((l) => l.event === 'oauth.failure')?.reason).toBe(reason)
    })
  })

  it('verifies legacy HS256 tokens when SUPABASE_JWT_SECRET is set, and only with that secret', async () => {
    const secret = 'legacy-jwt-secret-with-at-least-32-characters'
    const good = await sign(claims(), secret, 'HS256')
    const bad = await sign(claims(), `${secret}-other`, 'HS256')
    const post = (token: string) =>
      call(`${APP_ORIGIN}/api/tiktok/oauth/start`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }, { SUPABASE_JWT_SECRET: secret })
    expect((await post(good)).status).toBe(200)
    expect((await post(bad)).status).toBe(401)
    expect(h.logs.join('\n')).not.toContain(secret)
  })

  it('answers 503 auth_unavailable when the signing keys cannot be fetched and none are cached', async () => {
    // A project URL this isolate has never fetched keys for.
    h.supabase.faults.add('jwks', { status: 500 })
    const token = await h.supabase.signAccessToken(USER_ID, { iss: 'https://abc.supabase.co/other/auth/v1' })
    const res = await call(
      `${APP_ORIGIN}/api/tiktok/oauth/start`,
      { method: 'POST', headers: { authorization: `Bearer ${token}` } },
      { SUPABASE_URL: 'https://abc.supabase.co/other' },
    )
    expect(res.status).toBe(503)
    expect(await res.json()).toMatchObject({ code: 'auth_unavailable', retryable: true })
  })

  it('keeps verifying with stale keys when a refresh fails, and waits 30 s before asking again', async () => {
    // A project URL of its own, so this isolate's key cache starts empty for it.
    const bindings = { SUPABASE_URL: 'https://stale.supabase.co' }
    const post = async () =>
      call(
        `${APP_ORIGIN}/api/tiktok/oauth/start`,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${await h.supabase.signAccessToken(USER_ID, { iss: 'https://stale.supabase.co/auth/v1', exp: Math.floor(Date.now() / 1000) + 7200 })}`,
          },
        },
        bindings,
      )
    const jwksCalls = () => h.outbound.filter((r) => r.url === 'https://stale.supabase.co/auth/v1/.well-known/jwks.json').length
    expect((await post()).status).toBe(200)
    expect(jwksCalls()).toBe(1)
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 11 * 60_000 })
    try {
      h.supabase.faults.add('jwks', { status: 503 }, 5)
      expect((await post()).status).toBe(200)
      expect(jwksCalls()).toBe(2)
      expect((await post()).status).toBe(200)
      expect(jwksCalls()).toBe(2)
      expect(h.logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'auth.jwks' && l.outcome === 'error')).toHaveLength(1)
    } finally {
      vi.useRealTimers()
    }
  })

  describe('origin and return_to', () => {
    it('refuses an origin outside ALLOWED_ORIGINS, and ignores X-Forwarded-Host', async () => {
      const token = await h.supabase.signAccessToken(USER_ID)
      for (const url of ['https://evil.com', 'https://app.example.com.evil.com', 'http://app.example.com']) {
        const res = await call(`${url}/api/tiktok/oauth/start`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'x-forwarded-host': 'app.example.com' },
        })
        expect(res.status, url).toBe(403)
        expect(await res.json()).toMatchObject({ success: false, code: 'origin_not_allowed' })
      }
    })

    it('refuses a request whose Origin header names another site', async () => {
      const s = await start(h, { headers: { origin: 'https://evil.com' } })
      expect(s.response.status).toBe(403)
      expect(s.body.code).toBe('origin_not_allowed')
    })

    it.each(['//evil.com', 'https://evil.com/profile', '/\\evil.com', 'javascript:alert(1)'])('refuses return_to %j', async (returnTo) => {
      const s = await start(h, { body: { return_to: returnTo } })
      expect(s.response.status).toBe(400)
      expect(s.body).toMatchObject({ success: false, code: 'invalid_return_to' })
      expect(s.response.headers.get('set-cookie')).toBeNull()
    })
  })

  describe('bad input', () => {
    const post = async (init: RequestInit) => {
      const token = await h.supabase.signAccessToken(USER_ID)
      const res = await call(`${APP_ORIGIN}/api/tiktok/oauth/start`, {
        method: 'POST',
        ...init,
        headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) },
      })
      return { status: res.status, body: (await res.json()) as Record<string, unknown> }
    }

    it('415 for a body that is not JSON', async () => {
      const r = await post({ headers: { 'content-type': 'text/plain' }, body: 'return_to=/x' })
      expect(r).toMatchObject({ status: 415, body: { code: 'unsupported_media_type' } })
    })
    it('400 for malformed JSON', async () => {
      const r = await post({ headers: { 'content-type': 'application/json' }, body: '{"return_to":' })
      expect(r).toMatchObject({ status: 400, body: { code: 'invalid_json' } })
    })
    it('400 for a wrongly typed field, naming it', async () => {
      const r = await post({ headers: { 'content-type': 'application/json' }, body: '{"return_to": 5}' })
      expect(r).toMatchObject({ status: 400, body: { code: 'invalid_request' } })
      expect(String(r.body.error)).toContain('return_to')
    })
    it('413 for a large body', async () => {
      const r = await post({ headers: { 'content-type': 'application/json' }, body: JSON.stringify({ return_to: `/${'a'.repeat(10_000)}` }) })
      expect(r).toMatchObject({ status: 413, body: { code: 'payload_too_large' } })
    })
    it('405 for GET', async () => {
      const res = await call(`${APP_ORIGIN}/api/tiktok/oauth/start`)
      expect(res.status).toBe(405)
      expect(await res.json()).toMatchObject({ code: 'method_not_allowed' })
    })
  })

  it('answers 500 misconfigured, naming the setting but not its value, when configuration is incomplete', async () => {
    const res = await call(
      `${APP_ORIGIN}/api/tiktok/oauth/start`,
      { method: 'POST', headers: { authorization: `Bearer ${await h.supabase.signAccessToken(USER_ID)}` } },
      { TIKTOK_APP_SECRET: '', STATE_SECRET: 'too-short-secret' },
    )
    expect(res.status).toBe(500)
    const body = (await res.json()) as Record<string, unknown>
    expect(body).toMatchObject({ success: false, code: 'misconfigured' })
    expect(JSON.stringify(body)).not.toContain('STATE_SECRET')
    const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.event === 'config.invalid')
    expect(line.settings).toEqual([
      { name: 'TIKTOK_APP_SECRET', problem: 'missing', reason: 'not set' },
      { name: 'STATE_SECRET', problem: 'malformed', reason: expect.stringContaining('at least 32 bytes') },
    ])
    expect(h.logs.join('\n')).not.toContain('too-short-secret')
    expect(h.outbound).toEqual([])
  })
})
