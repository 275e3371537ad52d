import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { APP_ORIGIN, BIG_ID, call, connect, expectNoLeaks, type Harness, harness, OTHER_USER_ID, settled, USER_ID } from '../harness'

/** The proxy for the product's backends: who may call it, which paths reach TikTok, what comes back. */
let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  await settled()
  await expectNoLeaks(h, [KEY, OTHER_KEY])
})

const KEY = 'svc-key-0123456789abcdefghijklmnopqrstuv'
const OTHER_KEY = 'svc-key-zyxwvutsrqponmlkjihgfedcba9876543'
// One bindings object: one isolate, its keys digested once.
const keys = { SERVICE_KEYS: `reports:${KEY}, billing:${OTHER_KEY}` }
const PROXY = `${APP_ORIGIN}/api/tiktok/proxy`
const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, any>)

const proxied = (path: string, init: { key?: string | null; user?: string | null; method?: string; body?: string; headers?: Record<string, string> } = {}, bindings = keys) =>
  call(
    `${PROXY}/${path}`,
    {
      method: init.method ?? 'GET',
      headers: {
        ...(init.key !== null && { authorization: `Bearer ${init.key ?? KEY}` }),
        ...(init.user !== null && { 'x-tiktok-connect-user': init.user ?? USER_ID }),
        ...(init.body !== undefined && { 'content-type': 'application/json' }),
        ...init.headers,
      },
      body: init.body,
    },
    bindings,
  ).then(async (r) => ({ status: r.status, headers: r.headers, text: await r.text() }))
const codeOf = (r: { text: string }) => (JSON.parse(r.text) as { code: string }).code

describe('who may call the proxy', () => {
  it('a service key as the bearer token, compared with every configured one; anything else is 401 and reaches nothing', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    for (const [key, reason] of [
      [null, 'no_service_key'],
      ['svc-key-0123456789abcdefghijklmnopqrstuw', 'unknown_service_key'],
      [KEY.slice(0, -1), 'unknown_service_key'],
    ] as const) {
      const r = await proxied('open_api/v1.3/advertiser/info/', { key })
      expect(r.status, String(key)).toBe(401)
      expect(JSON.parse(r.text)).toMatchObject({ code: 'unauthorized', error: expect.stringContaining('SERVICE_KEYS') })
      expect(lines().findLast((l) => l.code === 'unauthorized')?.reason).toBe(reason)
    }
    // A user's Supabase session is not a service key.
    const session = await h.supabase.signAccessToken(USER_ID)
    expect((await proxied('open_api/v1.3/advertiser/info/', { key: session })).status).toBe(401)
    // No SERVICE_KEYS at all: nobody.
    expect((await proxied('open_api/v1.3/advertiser/info/', {}, {} as typeof keys)).status).toBe(401)
    expect(h.tiktok.requests).toEqual([])
    expect(h.supabaseCalls().filter((c) => c.startsWith('GET'))).toEqual([])
  })

  it('logs the key’s id, never the key', async () => {
    await proxied('open_api/v1.3/advertiser/info/', { key: OTHER_KEY, user: OTHER_USER_ID })
    expect(lines().find((l) => l.event === 'proxy.caller')).toMatchObject({ service_key_id: 'billing' })
  })

  it('X-TikTok-Connect-User must be a user id', async () => {
    for (const user of [null, 'not-a-uuid', `${USER_ID}x`]) {
      const r = await proxied('open_api/v1.3/advertiser/info/', { user })
      expect(r.status, String(user)).toBe(400)
      expect(codeOf(r)).toBe('invalid_request')
    }
  })

  it('SERVICE_KEYS must be <id>:<key> pairs of keys of 32 bytes or more, and health says so without a key', async () => {
    for (const spec of ['reports', `reports:short`, `:${KEY}`, `a:${KEY},a:${OTHER_KEY}`, `a:${'x'.repeat(40)}`]) {
      const r = await call(`${APP_ORIGIN}/api/tiktok/health`, {}, { SERVICE_KEYS: spec })
      const body = (await r.json()) as { malformed: string[] }
      expect(body.malformed, spec).toEqual(['SERVICE_KEYS'])
      expect(JSON.stringify(body)).not.toContain(KEY)
    }
  })
})

describe('which paths reach TikTok', () => {
  it.each([
    ['another API version', 'open_api/v1.2/advertiser/info/'],
    ['no API prefix', 'advertiser/info/'],
    ['an OAuth endpoint (it takes the app secret)', 'open_api/v1.3/oauth2/advertiser/get/'],
    ['another OAuth endpoint, in another case', 'open_api/v1.3/OAuth2/access_token/'],
    ['an encoded slash', 'open_api/v1.3/advertiser%2finfo/'],
    ['an encoded backslash', 'open_api/v1.3/advertiser%5Cinfo/'],
    ['an encoded dot segment', 'open_api/v1.3/x/%2e%2e/oauth2/access_token/'],
    ['no endpoint', 'open_api/v1.3/'],
  ])('refuses %s with 403 path_not_allowed', async (_, path) => {
    await connect(h)
    h.tiktok.requests.length = 0
    const r = await proxied(path)
    expect(r.status).toBe(403)
    expect(codeOf(r)).toBe('path_not_allowed')
    expect(h.tiktok.requests).toEqual([])
  })

  it('a dot segment the URL parser resolves lands outside the proxied API or outside the proxy: never TikTok’s OAuth', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    expect((await proxied('open_api/v1.3/../v1.3/oauth2/access_token/')).status).toBe(403)
    expect((await proxied('open_api/v1.3/../../../health')).status).toBeLessThan(500)
    expect(h.tiktok.requests).toEqual([])
  })

  it('takes GET and POST only (405 with Allow), and a POST body only as JSON of at most 1 MiB', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    const put = await proxied('open_api/v1.3/campaign/update/', { method: 'PUT' })
    expect(put.status).toBe(405)
    expect(put.headers.get('allow')).toBe('GET, HEAD, POST')
    const form = await proxied('open_api/v1.3/campaign/update/', { method: 'POST', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    expect(form.status).toBe(415)
    const big = await proxied('open_api/v1.3/campaign/update/', { method: 'POST', body: JSON.stringify({ pad: 'x'.repeat(1024 * 1024) }) })
    expect(big.status).toBe(413)
    expect(h.tiktok.requests).toEqual([])
  })
})

describe('whose connection', () => {
  it('none stored: 404 not_connected; revoked: 409 connection_revoked; neither reaches TikTok', async () => {
    expect(codeOf(await proxied('open_api/v1.3/advertiser/info/', { user: OTHER_USER_ID }))).toBe('not_connected')
    await connect(h)
    await h.sql(`update public.user_accounts set tiktok_revoked_at = now() where id = $1 returning id`, [USER_ID])
    h.tiktok.requests.length = 0
    const r = await proxied(`open_api/v1.3/advertiser/info/?advertiser_ids=${encodeURIComponent(JSON.stringify([BIG_ID]))}`)
    expect(r.status).toBe(409)
    expect(codeOf(r)).toBe('connection_revoked')
    expect(h.tiktok.requests).toEqual([])
  })
})
