import { createExecutionContext, createScheduledController, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import worker from '../../src/index'
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

const proxied = (
  path: string,
  init: { key?: string | null; user?: string | null; method?: string; body?: string; headers?: Record<string, string> } = {},
  bindings = keys,
) =>
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

  it('a key made with openssl rand -base64 (+, / and =) works', async () => {
    await connect(h)
    const base64 = 'k+Zb/9xQe3Vh2m/Lw8c1T0pYrN4sA7fJ6dG5uE2iO1U='
    const r = await proxied(infoPath([BIG_ID]), { key: base64 }, { SERVICE_KEYS: `ops:${base64}` } as typeof keys)
    expect(r.status).toBe(200)
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
    ['an OAuth endpoint spelled with an escaped letter', 'open_api/v1.3/%6fauth2/advertiser/get/'],
    ['an OAuth endpoint spelled with an escaped digit', 'open_api/v1.3/oauth%32/advertiser/get/'],
    ['no endpoint', 'open_api/v1.3/'],
  ])('refuses %s with 403 path_not_allowed', async (_, path) => {
    await connect(h)
    h.tiktok.requests.length = 0
    const r = await proxied(path)
    expect(r.status).toBe(403)
    expect(codeOf(r)).toBe('path_not_allowed')
    expect(h.tiktok.requests).toEqual([])
  })

  it('the path is the request’s own, never one in its query', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    for (const url of [
      `${PROXY}?x=/api/tiktok/proxy/open_api/v1.3/advertiser/info/`,
      `${PROXY}/open_api/v1.2/x?x=/api/tiktok/proxy/open_api/v1.3/campaign/get/`,
    ]) {
      const r = await call(url, { headers: { authorization: `Bearer ${KEY}`, 'x-tiktok-connect-user': USER_ID } }, keys)
      expect(r.status, url).toBe(403)
    }
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
    const form = await proxied('open_api/v1.3/campaign/update/', {
      method: 'POST',
      body: 'a=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    })
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
    await h.sql(`update public.tiktok_connections set revoked_at = now() where user_id = $1 returning user_id`, [USER_ID])
    h.tiktok.requests.length = 0
    const r = await proxied(`open_api/v1.3/advertiser/info/?advertiser_ids=${encodeURIComponent(JSON.stringify([BIG_ID]))}`)
    expect(r.status).toBe(409)
    expect(codeOf(r)).toBe('connection_revoked')
    expect(h.tiktok.requests).toEqual([])
  })
})

const infoPath = (ids: string[]) => `open_api/v1.3/advertiser/info/?advertiser_ids=${encodeURIComponent(JSON.stringify(ids))}`
const storedToken = async () => (await h.row(USER_ID)).access_token as string

describe('what reaches TikTok, and what comes back', () => {
  it('TikTok’s own path and query with the stored token in Access-Token; nothing of the caller’s headers, never the app secret', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    const r = await proxied(infoPath([BIG_ID]), { headers: { 'access-token': 'callers-own-token', cookie: 'a=b', 'x-forwarded-for': '1.2.3.4' } })
    expect(r.status).toBe(200)
    const [sent] = h.tiktokCalls('/advertiser/info/')
    expect(h.tiktok.requests).toHaveLength(1)
    expect(sent!.query).toEqual({ advertiser_ids: JSON.stringify([BIG_ID]) })
    expect(sent!.headers['access-token']).toBe(await storedToken())
    for (const name of ['authorization', 'cookie', 'x-tiktok-connect-user', 'x-forwarded-for']) expect(sent!.headers[name], name).toBeUndefined()
    expect(JSON.stringify(sent)).not.toContain('test-app-secret')
    // A redirect at TikTok would carry the token elsewhere: the Worker asks fetch not to follow one.
    const outbound = h.outbound.filter((request) => request.url.includes('/advertiser/info/'))
    expect(outbound.map((request) => request.redirect)).toEqual(['manual'])
  })

  it('TikTok’s answer as TikTok sent it: status, bytes (19-digit ids exact), content type, plus X-TikTok-Code and the Worker’s X-Request-Id', async () => {
    await connect(h)
    const r = await proxied(`open_api/v1.3/campaign/get/?advertiser_id=${BIG_ID}`)
    expect(r.status).toBe(200)
    expect(r.headers.get('content-type')).toMatch(/^application\/json/)
    expect(r.headers.get('x-tiktok-code')).toBe('0')
    expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    // The ids as TikTok wrote them: the text, not a re-serialised parse.
    const campaignIds = [...r.text.matchAll(/"campaign_id":\s*"?(\d+)/g)].map((m) => m[1]!)
    expect(campaignIds.length).toBeGreaterThan(0)
    for (const id of campaignIds) expect(id).toMatch(/^\d{19}$/)
    expect(r.text).toContain(BIG_ID)
    const page = JSON.parse(r.text) as { code: number; data: { page_info: unknown } }
    expect(page).toMatchObject({ code: 0, data: { page_info: { page: 1 } } })
  })

  it('a POST’s JSON body reaches TikTok byte for byte, and TikTok’s status comes back whatever it is', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    const body = '{"advertiser_id":"7012345678901234567","budget":12.50,"name":"Spring ✓"}'
    const r = await proxied('open_api/v1.3/campaign/create/', { method: 'POST', body })
    const [sent] = h.tiktok.requests
    expect(sent).toMatchObject({ method: 'POST', body })
    expect(sent!.headers['access-token']).toBe(await storedToken())
    // The stand-in has no such endpoint: its own answer passes through, not one of the Worker's.
    const direct = await h.tiktok.app.request('/open_api/v1.3/campaign/create/', { method: 'POST', body })
    expect(direct.status).toBeGreaterThanOrEqual(400)
    expect({ status: r.status, text: r.text }).toEqual({ status: direct.status, text: await direct.text() })
    expect(r.headers.get('x-tiktok-code')).toBeNull()
  })

  it('a token TikTok refuses: its answer passes through, the connection is marked revoked (detected_by proxy) with its event, and the next call is 409 without TikTok', async () => {
    await connect(h)
    h.tiktok.revokeGrant(await storedToken())
    h.tiktok.requests.length = 0
    const refused = await proxied(infoPath([BIG_ID]))
    expect(refused.status).toBe(200)
    expect(refused.headers.get('x-tiktok-code')).toBe('40105')
    expect(JSON.parse(refused.text)).toMatchObject({ code: 40105 })
    expect((await h.row(USER_ID)).revoked_at).not.toBeNull()
    expect((await h.events()).map((e) => e.payload)).toMatchObject([
      { type: 'tiktok.connection.connected' },
      { type: 'tiktok.connection.revoked', detected_by: 'proxy', code: 40105 },
    ])
    const next = await proxied(infoPath([BIG_ID]))
    expect(next.status).toBe(409)
    expect(codeOf(next)).toBe('connection_revoked')
    expect(h.tiktokCalls('/advertiser/info/')).toHaveLength(1)
  })

  it('one endpoint refusing the token does not revoke a connection the advertiser list still accepts', async () => {
    await connect(h)
    h.tiktok.faults.add('read', { tiktokCode: 40105 })
    const r = await proxied(infoPath([BIG_ID]))
    expect(r.headers.get('x-tiktok-code')).toBe('40105')
    expect(h.tiktokCalls('/advertiser/get/').length).toBeGreaterThanOrEqual(2)
    expect((await h.row(USER_ID)).revoked_at).toBeNull()
    expect((await h.events()).map((e) => e.type)).toEqual(['tiktok.connection.connected'])
  })

  it('TikTok down or slow: 502 / 504 in the Worker’s envelope', async () => {
    await connect(h)
    h.tiktok.faults.add('read', { status: 503 })
    // A 5xx from TikTok is TikTok's answer too: it passes through as it came.
    expect((await proxied(infoPath([BIG_ID]))).status).toBe(503)
    const down = await proxied(infoPath([BIG_ID]), {}, { ...keys, TIKTOK_API_BASE: 'https://unreachable.tiktok.example/open_api/v1.3' } as typeof keys)
    expect(down.status).toBe(502)
    expect(codeOf(down)).toBe('tiktok_unavailable')
    h.unexpected.length = 0
  })
})

describe('the app’s quota', () => {
  // A tier of one call a second: the proxy's own ceiling leaves it that one.
  const tiny = { ...keys, TIKTOK_QPS: '2', TIKTOK_QPM: '120', PROXY_MAX_WAIT_MS: '0' }

  it('over budget, a proxy call waits at most PROXY_MAX_WAIT_MS, then answers 429 tiktok_quota_exhausted with Retry-After, TikTok not called', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    const answers = []
    for (let i = 0; i < 4; i++) answers.push(await proxied(infoPath([BIG_ID]), {}, tiny))
    const statuses = answers.map((r) => r.status)
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0)
    const refused = answers.filter((r) => r.status === 429)
    expect(refused.length).toBeGreaterThan(0)
    for (const r of refused) {
      expect(codeOf(r)).toBe('tiktok_quota_exhausted')
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    }
    expect(h.tiktokCalls('/advertiser/info/')).toHaveLength(statuses.filter((s) => s === 200).length)
  })

  it('a read TikTok throttled anyway goes once more when the budget is back within the wait; a write never', async () => {
    await connect(h)
    const patient = { ...keys, PROXY_MAX_WAIT_MS: '1000' }
    h.tiktok.faults.add('read', { tiktokCode: 40100 })
    const r = await proxied(infoPath([BIG_ID]), {}, patient)
    expect(r.headers.get('x-tiktok-code')).toBe('0')
    expect(h.tiktokCalls('/advertiser/info/')).toHaveLength(2)
    expect(h.logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'quota.backoff')).toHaveLength(1)
  })
})

describe('health from every call', () => {
  const age = (userId: string, interval: string) =>
    h.sql(`update public.tiktok_connections set verified_at = now() - $2::interval where user_id = $1 returning user_id`, [userId, interval])
  const recordUses = () => h.supabaseCalls().filter((c) => c === 'POST /rest/v1/rpc/tiktok_record_use')

  it('a call TikTok answers with code 0 records the connection as verified, at most once per 10 minutes', async () => {
    await connect(h)
    await age(USER_ID, '1 hour')
    const before = Date.parse((await h.row(USER_ID)).verified_at as string)
    expect((await proxied(infoPath([BIG_ID]))).headers.get('x-tiktok-code')).toBe('0')
    await settled()
    expect(Date.parse((await h.row(USER_ID)).verified_at as string)).toBeGreaterThan(before + 50 * 60_000)
    // Busy: the next calls find it recent and write nothing.
    for (let i = 0; i < 3; i++) await proxied(infoPath([BIG_ID]))
    await settled()
    expect(recordUses()).toHaveLength(1)
  })

  it('so the sweep takes the connections not in use first', async () => {
    await connect(h)
    await connect(h, { userId: OTHER_USER_ID })
    await age(USER_ID, '2 hours')
    await age(OTHER_USER_ID, '1 hour')
    // The product's service uses USER_ID's connection: it becomes the most recently verified.
    await proxied(infoPath([BIG_ID]))
    await settled()
    h.tiktok.requests.length = 0
    const ctx = createExecutionContext()
    await worker.scheduled(createScheduledController({ cron: '*/15 * * * *', scheduledTime: Date.now() }), { ...env, SWEEP_MAX_PER_RUN: '1' } as never, ctx)
    await waitOnExecutionContext(ctx)
    const swept = h.tiktokCalls('/advertiser/get/').map((r) => r.headers['access-token'])
    expect(swept).toEqual([(await h.row(OTHER_USER_ID)).access_token])
  })
})
