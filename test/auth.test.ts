import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { APP_ORIGIN, call, type Harness, harness, start, USER_ID } from './harness'

let h: Harness
let harnessFetch: typeof fetch
beforeEach(async () => {
  h = await harness()
  harnessFetch = vi.mocked(globalThis.fetch).getMockImplementation()!
})
afterEach(() => {
  expect(h.unexpected).toEqual([])
})

type Jwks = { keys: Record<string, unknown>[] }

const logLines = () => h.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
const failureReason = () => logLines().find((l) => l.event === 'oauth.failure')?.reason

describe('what a Supabase access token must claim', () => {
  const now = () => Math.floor(Date.now() / 1000)

  it.each([['anon'], ['service_role'], [undefined]])('refuses role %j with 401 unauthorized', async (role) => {
    const token = await h.supabase.signAccessToken(USER_ID, { role })
    const s = await start(h, { token })
    expect(s.response.status).toBe(401)
    expect(s.body).toMatchObject({ success: false, code: 'unauthorized' })
    expect(s.response.headers.get('set-cookie')).toBeNull()
    expect(failureReason()).toBe('role')
  })

  it('accepts a token issued up to 30 s ahead of this clock', async () => {
    const s = await start(h, { token: await h.supabase.signAccessToken(USER_ID, { iat: now() + 20 }) })
    expect(s.response.status).toBe(200)
  })

  it('refuses a token issued more than 30 s ahead of this clock', async () => {
    const s = await start(h, { token: await h.supabase.signAccessToken(USER_ID, { iat: now() + 120 }) })
    expect(s.response.status).toBe(401)
    expect(s.body).toMatchObject({ code: 'unauthorized' })
    expect(failureReason()).toBe('iat')
  })

  it.each([
    ['an expired token', { exp: -1 }, 'JwtTokenExpired'],
    ['a not-yet-valid token (nbf keeps no leeway)', { iat: 0, nbf: 10 }, 'JwtTokenNotBefore'],
    ['a non-numeric iat', { iat: 'soon' }, 'iat'],
  ] as const)('the leeway does not loosen the other time checks: refuses %s for that reason', async (_name, offsets, reason) => {
    const claims = Object.fromEntries(Object.entries(offsets).map(([k, v]) => [k, typeof v === 'number' ? now() + v : v]))
    const s = await start(h, { token: await h.supabase.signAccessToken(USER_ID, claims) })
    expect(s.response.status).toBe(401)
    expect(failureReason()).toBe(reason)
  })
})

/** `respond` shapes this test's JWKS answer from the stand-in's key set; every other request reaches the harness as usual. */
const onJwks = (respond: (jwks: Jwks) => Response) => {
  vi.mocked(globalThis.fetch).mockImplementation(async (input, init) => {
    const response = await harnessFetch(input, init)
    if (!new Request(input, init).url.endsWith('/auth/v1/.well-known/jwks.json')) return response
    return respond((await response.json()) as Jwks)
  })
}

/** POST /start against a Supabase project of its own, so this isolate's key cache starts empty for it. */
const startOn = async (project: string) => {
  const url = `https://${project}.supabase.co`
  const token = await h.supabase.signAccessToken(USER_ID, { iss: `${url}/auth/v1` })
  const response = await call(`${APP_ORIGIN}/api/tiktok/oauth/start`, { method: 'POST', headers: { authorization: `Bearer ${token}` } }, { SUPABASE_URL: url })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/** A body of `text` in chunks, with no Content-Length: only reading it tells its size. */
const streamed = (text: string, chunk = 8192) => {
  const bytes = new TextEncoder().encode(text)
  let at = 0
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close()
      controller.enqueue(bytes.slice(at, at + chunk))
      at += chunk
    },
  })
}

describe('the JWKS answer is bounded', () => {
  const jwksErrors = () => logLines().filter((l) => l.event === 'auth.jwks' && l.outcome === 'error')

  it('treats a JWKS over 64 KiB as a failed fetch, even without a Content-Length', async () => {
    onJwks((jwks) => new Response(streamed(JSON.stringify({ ...jwks, padding: 'x'.repeat(70_000) })), { headers: { 'content-type': 'application/json' } }))
    const r = await startOn('jwks-streamed-large')
    expect(r.status).toBe(503)
    expect(r.body).toMatchObject({ success: false, code: 'auth_unavailable', retryable: true })
    expect(jwksErrors()).toHaveLength(1)
  })

  it('refuses a JWKS whose Content-Length is over 64 KiB, whatever it then sends', async () => {
    onJwks((jwks) => new Response(JSON.stringify(jwks), { headers: { 'content-type': 'application/json', 'content-length': '65537' } }))
    const r = await startOn('jwks-declared-large')
    expect(r.status).toBe(503)
    expect(r.body).toMatchObject({ code: 'auth_unavailable' })
    expect(jwksErrors()).toHaveLength(1)
  })

  it('still uses a JWKS just under 64 KiB', async () => {
    onJwks((jwks) => new Response(streamed(JSON.stringify({ ...jwks, padding: 'x'.repeat(60_000) })), { headers: { 'content-type': 'application/json' } }))
    expect((await startOn('jwks-under-limit')).status).toBe(200)
    expect(jwksErrors()).toEqual([])
  })

  it('uses only the first 10 keys of the set', async () => {
    const withKeyAt = (index: number) => (jwks: Jwks) => {
      const spare: Jwks['keys'] = Array.from({ length: 11 }, (_, i) => ({ ...jwks.keys[0], kid: `spare-${i}` }))
      spare.splice(index, 0, jwks.keys[0]!)
      return Response.json({ keys: spare })
    }
    onJwks(withKeyAt(9))
    expect((await startOn('jwks-key-tenth')).status).toBe(200)
    onJwks(withKeyAt(10))
    const r = await startOn('jwks-key-eleventh')
    expect(r.status).toBe(401)
    expect(failureReason()).toBe('unknown_kid')
  })
})
