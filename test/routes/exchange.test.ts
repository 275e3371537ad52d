import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mintState } from '../../src/state'
import {
  ADVERTISERS,
  APP_ORIGIN,
  BIG_ID,
  call,
  exchange,
  type Harness,
  harness,
  hold,
  pastDeadlines,
  OTHER_ORIGIN,
  OTHER_USER_ID,
  secretsOf,
  start,
  testEnv,
  USER_ID,
  testKeyBase64,
  stateBinding,
  testSigner,
} from '../harness'

let h: Harness
const bodies: string[] = []

beforeEach(async () => {
  h = await harness()
  bodies.length = 0
})

afterEach(async () => {
  expect(h.unexpected).toEqual([])
  // No token, code, secret, state or cookie in any answer or log line, whatever the test did.
  const issued = h.tiktok.requests.filter((r) => r.path.endsWith('/access_token/')).map((r) => JSON.parse(r.body).auth_code as string)
  for (const secret of [...(await secretsOf(h)), ...issued]) {
    for (const body of bodies) expect(body).not.toContain(secret)
    expect(h.logs.join('\n')).not.toContain(secret)
  }
})

/** Reads an answer and keeps its text for the leak check. */
const read = async (res: Response) => {
  const text = await res.text()
  bodies.push(text)
  return { status: res.status, headers: res.headers, body: JSON.parse(text) as Record<string, unknown> }
}

/** No connection written, no completion attempted, and any claim given back (counted) for a retry. */
const nothingWritten = async () => {
  expect(h.supabaseCalls().filter((call) => call === COMPLETE || call.startsWith('PATCH'))).toEqual([])
  expect((await h.row(USER_ID)).access_token).toBeNull()
  expect((await h.exchanges()).filter((e) => e.status !== 'released')).toEqual([])
}
const CLAIM = 'POST /rest/v1/rpc/tiktok_claim_exchange'
const COMPLETE = 'POST /rest/v1/rpc/tiktok_complete_exchange'
const RELEASE = 'POST /rest/v1/rpc/tiktok_release_exchange'
const sha256Hex = async (value: string) =>
  [...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(value)))].map((b) => b.toString(16).padStart(2, '0')).join('')

/** start → TikTok authorize → exchange, as the browser would do it. */
async function roundTrip(options: { origin?: string; userId?: string } = {}) {
  const s = await start(h, options)
  expect(s.response.status).toBe(200)
  const code = h.tiktok.issueCode()
  const res = await read(await exchange({ state: s.state, authCode: code, cookie: s.cookie, origin: options.origin }))
  return { ...res, code, started: s }
}

describe('POST /api/tiktok/oauth/exchange', () => {
  it('exchanges the code, lists advertisers, writes the row, and never returns the token', async () => {
    const { status, body, headers, code, started } = await roundTrip()
    expect(status).toBe(200)
    const { selection, ...rest } = body as { selection: { ticket: string; expires_at: string } }
    expect(rest).toEqual({
      success: true,
      advertiser: { id: BIG_ID, name: 'Brand A' },
      business_id: BIG_ID,
      account_id: 'Brand A',
      advertisers: ADVERTISERS,
      return_to: '/profile',
      message: 'TikTok connected successfully',
    })
    // Two advertisers: a ticket to change the choice comes along.
    expect(selection.ticket).toMatch(/^t3\.[\w-]+\.[\w-]+$/)
    expect(Date.parse(selection.expires_at)).toBeGreaterThan(Date.now())
    expect(headers.get('cache-control')).toBe('no-store')
    expect(headers.get('x-request-id')).toBeTruthy()
    // The binding cookie is not cleared (a repeated submission must still prove the browser), and
    // with a ticket it is set again for the ticket's ten minutes: the ticket works only beside it.
    expect(headers.get('set-cookie')).toBe(`__Host-tiktok_oauth_binding=${started.cookie}; Max-Age=600; Path=/; HttpOnly; Secure; SameSite=Lax`)

    // What reached TikTok: one POST with a JSON body, one GET with the token in Access-Token.
    const [token] = h.tiktokCalls('/access_token/')
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
    expect(token!.method).toBe('POST')
    expect(token!.headers['content-type']).toBe('application/json')
    expect(JSON.parse(token!.body)).toEqual({ app_id: 'test-app-id', secret: testEnv.TIKTOK_APP_SECRET, auth_code: code })

    const row = await h.row(USER_ID)
    expect(row.access_token).toMatch(/^[0-9a-f]{40}$/)
    const [list] = h.tiktokCalls('/advertiser/get/')
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
    expect(list!.method).toBe('GET')
    expect(list!.headers['access-token']).toBe(row.access_token)
    expect(list!.headers.authorization).toBeUndefined()
    expect(list!.query).toEqual({ app_id: 'test-app-id', secret: testEnv.TIKTOK_APP_SECRET })

    // What reached Supabase: the claim of the state, then one transactional completion.
    expect(h.supabaseCalls()).toEqual([CLAIM, COMPLETE])
    const [claim, complete] = h.supabase.requests
    for (const r of [claim!, complete!]) {
      expect(r.headers.apikey).toBe(testEnv.SUPABASE_SECRET_KEY)
      expect(r.headers.authorization).toBeUndefined()
    }
    // What the database holds: the state's claim, done, owned by a random id of the Worker's own (not
    // the request id a client can choose), with the code's hash and never the code.
    const [stored] = await h.exchanges()
    expect(stored).toMatchObject({ state_nonce: stateBinding(started.state), user_id: USER_ID, code_hash: await sha256Hex(code), status: 'done' })
    expect(stored!.claimed_by).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(stored!.claimed_by).not.toBe(headers.get('x-request-id'))
    for (const r of [claim!, complete!]) expect(r.body).not.toContain(code)
    expect(row.advertisers).toEqual(ADVERTISERS)
    expect(row).toMatchObject({ advertiser_id: BIG_ID, advertiser_name: 'Brand A' })
    expect(row.connected_at).toBeTruthy()
    expect((await h.row(OTHER_USER_ID)).access_token).toBeNull()

    const events = h.logs.map((l) => JSON.parse(l))
    expect(events.map((e) => e.event)).toEqual(
      expect.arrayContaining(['oauth.start', 'tiktok.token_exchange', 'tiktok.advertisers', 'supabase.write', 'oauth.success']),
    )
    const exchangeLine = events.find((e) => e.event === 'tiktok.token_exchange')
    expect(exchangeLine).toMatchObject({ outcome: 'ok', tiktok_code: 0 })
    expect(exchangeLine.tiktok_request_id).toMatch(/^2026/)
    expect(typeof exchangeLine.duration_ms).toBe('number')
  })

  it('with a single advertiser, chooses it and sends no selection ticket', async () => {
    h = await harness({ advertisers: [{ id: BIG_ID, name: 'Only' }] })
    const { status, body } = await roundTrip()
    expect(status).toBe(200)
    expect(body).toMatchObject({ business_id: BIG_ID, account_id: 'Only' })
    expect(body.selection).toBeUndefined()
  })

  it('returns to the return_to that was signed into the state', async () => {
    const s = await start(h, { body: { return_to: '/settings/integrations#tiktok' } })
    const res = await read(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }))
    expect(res.body.return_to).toBe('/settings/integrations#tiktok')
  })

  it('works the same on the second product domain', async () => {
    const { status, started } = await roundTrip({ origin: OTHER_ORIGIN })
    expect(status).toBe(200)
    expect(started.authorizeUrl.searchParams.get('redirect_uri')).toBe(`${OTHER_ORIGIN}/oauth/callback`)
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
  })

  it('sends a legacy service_role JWT key as a bearer token too', async () => {
    const legacy = 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl'
    const s = await start(h)
    const res = await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, { SUPABASE_SECRET_KEY: legacy })
    // The stand-in only knows the sb_secret key: refused, and that is a storage failure, not a crash.
    expect((await read(res)).body.code).toBe('storage_unavailable')
    // The first request of this isolate (the schema check) was refused already; every one carries the key.
    const first = h.supabase.requests[0]!
    expect(first.headers.apikey).toBe(legacy)
    expect(first.headers.authorization).toBe(`Bearer ${legacy}`)
    expect(h.logs.join('\n')).not.toContain(legacy)
  })

  describe('ids beyond 2^53 stay exact', () => {
    it.each([false, true])('bare ids: %s', async (bareIds) => {
      h = await harness({ bareIds, advertisers: [{ id: '9007199254740993', name: 'Edge' }] })
      const { status, body } = await roundTrip()
      expect(status).toBe(200)
      expect(body.business_id).toBe('9007199254740993')
      expect((await h.row(USER_ID)).advertiser_id).toBe('9007199254740993')
      const completion = h.supabase.requests.find((r) => r.path.endsWith('/rpc/tiktok_complete_exchange'))!
      expect(completion.body).toContain('"p_advertiser_id":"9007199254740993","p_advertisers":[{"id":"9007199254740993","name":"Edge"}]')
    })
  })

  describe('state failures: 4xx, TikTok never called, nothing written', () => {
    const expectRefused = async (res: Response, status: number, code: string) => {
      const r = await read(res)
      expect(r.status).toBe(status)
      expect(r.body).toMatchObject({ success: false, code })
      expect(String(r.body.error).length).toBeGreaterThan(20)
      expect(h.tiktok.requests).toEqual([])
      await nothingWritten()
    }

    it('tampered state', async () => {
      const s = await start(h)
      const [v, payload, mac] = s.state.split('.')
      const forged = JSON.parse(atob(payload!.replace(/-/g, '+').replace(/_/g, '/')))
      forged.u = OTHER_USER_ID
      const forgedPayload = btoa(JSON.stringify(forged)).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')
      await expectRefused(await exchange({ state: `${v}.${forgedPayload}.${mac}`, authCode: 'c', cookie: s.cookie }), 400, 'invalid_state')
    })

    it('expired state', async () => {
      const minted = await mintState(testSigner, { userId: USER_ID, origin: APP_ORIGIN, returnTo: '/profile' }, Date.now() - 11 * 60_000)
      await expectRefused(await exchange({ state: minted.state, authCode: 'c', cookie: minted.binding }), 400, 'state_expired')
    })

    it('state minted on the other product domain', async () => {
      const s = await start(h, { origin: OTHER_ORIGIN })
      await expectRefused(await exchange({ state: s.state, authCode: 'c', cookie: s.cookie, origin: APP_ORIGIN }), 403, 'state_not_bound')
    })

    it('Origin header of another site', async () => {
      const s = await start(h)
      await expectRefused(
        await exchange({ state: s.state, authCode: 'c', cookie: s.cookie, headers: { origin: 'https://evil.com' } }),
        403,
        'origin_not_allowed',
      )
    })

    it('no binding cookie (another browser)', async () => {
      const s = await start(h)
      await expectRefused(await exchange({ state: s.state, authCode: 'c' }), 403, 'state_not_bound')
    })

    it('mismatched binding cookie', async () => {
      const first = await start(h)
      const second = await start(h)
      await expectRefused(await exchange({ state: first.state, authCode: 'c', cookie: second.cookie }), 403, 'state_not_bound')
    })

    it("another user's state presented with this browser's cookie", async () => {
      const mine = await start(h)
      const theirs = await start(h, { userId: OTHER_USER_ID })
      await expectRefused(await exchange({ state: theirs.state, authCode: 'c', cookie: mine.cookie }), 403, 'state_not_bound')
    })

    it('a constant, unsigned state', async () => {
      const s = await start(h)
      await expectRefused(await exchange({ state: 'your_custom_params', authCode: 'c', cookie: s.cookie }), 400, 'invalid_state')
    })

    it('a request on an origin that is not allowed', async () => {
      const s = await start(h)
      await expectRefused(await exchange({ state: s.state, authCode: 'c', cookie: s.cookie, origin: 'https://evil.com' }), 403, 'origin_not_allowed')
    })
  })

  describe('bad input', () => {
    const post = (init: RequestInit) => call(`${APP_ORIGIN}/api/tiktok/oauth/exchange`, { method: 'POST', ...init })
    it.each([
      ['no content type', {}, 'x', 415, 'unsupported_media_type'],
      ['form body', { 'content-type': 'application/x-www-form-urlencoded' }, 'auth_code=a&state=b', 415, 'unsupported_media_type'],
      ['malformed JSON', { 'content-type': 'application/json' }, '{"auth_code":', 400, 'invalid_json'],
      ['missing state', { 'content-type': 'application/json' }, '{"auth_code":"a"}', 400, 'invalid_request'],
      ['empty code', { 'content-type': 'application/json' }, '{"auth_code":"","state":"s"}', 400, 'invalid_request'],
      ['numeric code', { 'content-type': 'application/json' }, '{"auth_code":5,"state":"s"}', 400, 'invalid_request'],
      ['JSON array', { 'content-type': 'application/json' }, '[]', 400, 'invalid_request'],
      ['overlong code', { 'content-type': 'application/json' }, JSON.stringify({ auth_code: 'a'.repeat(1500), state: 's' }), 400, 'invalid_request'],
      ['huge body', { 'content-type': 'application/json' }, JSON.stringify({ auth_code: 'a', state: 's'.repeat(100_000) }), 413, 'payload_too_large'],
    ])('%s', async (_name, headers, body, status, code) => {
      const r = await read(await post({ headers: headers as Record<string, string>, body }))
      expect(r.status).toBe(status)
      expect(r.body).toMatchObject({ success: false, code })
      expect(typeof r.body.error).toBe('string')
      expect(h.tiktok.requests).toEqual([])
    })
  })

  describe('TikTok failures: mapped, nothing written', () => {
    it.each([
      [40100, 'token', 429, 'tiktok_rate_limited'],
      [40133, 'token', 429, 'tiktok_rate_limited'],
      [50000, 'token', 502, 'tiktok_unavailable'],
      [40110, 'token', 400, 'code_invalid_or_used'],
      [40001, 'token', 403, 'tiktok_permission_denied'],
      [40101, 'token', 502, 'tiktok_misconfigured'],
      [40113, 'token', 502, 'tiktok_misconfigured'],
      [49999, 'token', 502, 'tiktok_error'],
      [40105, 'advertisers', 502, 'tiktok_token_rejected'],
      [40001, 'advertisers', 403, 'tiktok_permission_denied'],
    ] as const)('code %i on %s → %i %s', async (tiktokCode, target, status, code) => {
      h.tiktok.faults.add(target, { tiktokCode })
      const r = await roundTrip()
      expect(r.status).toBe(status)
      expect(r.body).toMatchObject({ success: false, code })
      // HTTP 200 from TikTok with a non-zero code is a failure, logged with TikTok's code.
      const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.outcome === 'tiktok_error')
      expect(line).toMatchObject({ tiktok_code: tiktokCode })
      await nothingWritten()
    })

    it('never repeats the code exchange, even for a retryable answer', async () => {
      h.tiktok.faults.add('token', { tiktokCode: 50002 })
      const r = await roundTrip()
      expect(r.body.code).toBe('tiktok_unavailable')
      expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
    })

    it.each([
      ['non-JSON answer', { nonJson: true }, 502],
      ['HTTP 500', { status: 500 }, 502],
      ['HTTP 404 (edge fault)', { status: 404 }, 502],
    ])('token exchange: %s → tiktok_unavailable', async (_name, fault, status) => {
      h.tiktok.faults.add('token', fault)
      const r = await roundTrip()
      expect(r).toMatchObject({ status, body: { code: 'tiktok_unavailable', retryable: true } })
      expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
      expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(0)
      await nothingWritten()
    })

    it('token exchange: no answer by the deadline → 504 tiktok_unavailable, not repeated', async () => {
      const s = await start(h)
      const stalled = hold()
      h.tiktok.faults.add('token', stalled.fault)
      const r = await read(await pastDeadlines(() => exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, {}), stalled))
      expect(r).toMatchObject({ status: 504, body: { code: 'tiktok_unavailable', retryable: true } })
      expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
      expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(0)
      await nothingWritten()
    })

    it('retries the advertiser list on a transient code and a 5xx, then succeeds', async () => {
      h.tiktok.faults.add('advertisers', { tiktokCode: 50002 })
      h.tiktok.faults.add('advertisers', { status: 503 })
      const r = await roundTrip()
      expect(r.status).toBe(200)
      expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(3)
      expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
    })

    // The quota is the app's: a retry while TikTok throttles spends more of what every tenant shares.
    for (const code of [40100, 40016, 40133])
      it(`never retries a rate-limit answer (${code}): one call, 429 tiktok_rate_limited, the new grant revoked`, async () => {
        h.tiktok.faults.add('advertisers', { tiktokCode: code }, 3)
        const r = await roundTrip()
        expect(r).toMatchObject({ status: 429, body: { code: 'tiktok_rate_limited', retryable: true } })
        expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
        // An app-wide throttle went to the app's governor (logged once), and the grant's revoke waited
        // out the back-off it began rather than adding to the throttle. 40133 is one advertiser's
        // limit, and this call (the OAuth list) names none.
        const logged = h.logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'quota.backoff')
        expect(logged).toEqual(code === 40133 ? [] : [expect.objectContaining({ tiktok_code: code, scope: 'app', window: 'second' })])
        expect(h.tiktokCalls('/revoke_token/')).toHaveLength(1)
        await nothingWritten()
      })

    it('does not retry an answer of the wrong shape: it will not change', async () => {
      h.tiktok.faults.add('advertisers', { nonJson: true }, 3)
      const r = await roundTrip()
      expect(r).toMatchObject({ status: 502, body: { code: 'tiktok_unavailable' } })
      expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
    })

    it('gives up on the advertiser list after three attempts', async () => {
      h.tiktok.faults.add('advertisers', { tiktokCode: 50000 }, 5)
      const r = await roundTrip()
      expect(r).toMatchObject({ status: 502, body: { code: 'tiktok_unavailable' } })
      expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(3)
      await nothingWritten()
    })

    it('does not retry an advertiser list that timed out', async () => {
      const s = await start(h)
      const stalled = hold()
      h.tiktok.faults.add('advertisers', stalled.fault)
      const r = await read(await pastDeadlines(() => exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, {}), stalled))
      expect(r).toMatchObject({ status: 504, body: { code: 'tiktok_unavailable' } })
      expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
      await nothingWritten()
    })

    it('answers 422 no_advertisers when the grant covers no advertiser', async () => {
      h = await harness({ advertisers: [] })
      const r = await roundTrip()
      expect(r).toMatchObject({ status: 422, body: { code: 'no_advertisers' } })
      await nothingWritten()
    })
  })

  describe('Supabase failures', () => {
    it('a user deleted from auth.users since its access token was issued is 401 unauthorized, before TikTok is called', async () => {
      await h.sql('delete from auth.users where id = $1 returning id', [USER_ID])
      const r = await roundTrip()
      expect(r).toMatchObject({ status: 401, body: { code: 'unauthorized' } })
      expect(h.supabaseCalls()).toEqual([CLAIM])
      expect(h.tiktok.requests).toEqual([])
      expect(await h.exchanges()).toEqual([])
      const failure = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'oauth.failure')
      expect(failure).toMatchObject({ code: 'unauthorized', reason: 'user_deleted' })
    })

    it('any Supabase user can connect: a user the product has no row for (no profile) gets its connection', async () => {
      await h.sql('delete from public.profiles where id = $1 returning id', [USER_ID])
      const r = await roundTrip()
      expect(r.status).toBe(200)
      expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
    })

    it('a 5xx on the claim is retried once, then 502 storage_unavailable; TikTok never called', async () => {
      h.supabase.faults.add('rest', { status: 503 }, 2)
      const r = await roundTrip()
      expect(r).toMatchObject({ status: 502, body: { code: 'storage_unavailable', retryable: true } })
      expect(h.supabaseCalls().slice(0, 2)).toEqual([CLAIM, CLAIM])
      expect(h.tiktok.requests).toEqual([])
    })

    it('a single 5xx is absorbed by the retry', async () => {
      h.supabase.faults.add('rest', { status: 500 })
      const r = await roundTrip()
      expect(r.status).toBe(200)
      expect(h.supabaseCalls()).toEqual([CLAIM, CLAIM, COMPLETE])
      expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
    })

    it('a completion that fails after TikTok answered writes nothing and gives the state back', async () => {
      h.supabase.faults.add('rpc', { status: 503 }, 2)
      const r = await roundTrip()
      expect(r).toMatchObject({ status: 502, body: { code: 'storage_unavailable' } })
      expect(h.supabaseCalls()).toEqual([CLAIM, COMPLETE, COMPLETE, RELEASE])
      expect((await h.row(USER_ID)).access_token).toBeNull()
      expect(await h.exchanges()).toMatchObject([{ status: 'released', failed_attempts: 1 }])
    })

    it('timeouts become storage_unavailable', async () => {
      const s = await start(h)
      const [first, second] = [hold(), hold()]
      h.supabase.faults.add('rest', first.fault)
      h.supabase.faults.add('rest', second.fault)
      const r = await read(await pastDeadlines(() => exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, {}), first, second))
      expect(r).toMatchObject({ status: 502, body: { code: 'storage_unavailable' } })
      expect(h.tiktok.requests).toEqual([])
    })

    it('a 4xx (e.g. a missing table) is not retried', async () => {
      h.supabase.faults.add('rest', { status: 400 })
      const r = await roundTrip()
      expect(r).toMatchObject({ status: 502, body: { code: 'storage_unavailable' } })
      expect(h.supabaseCalls()).toEqual([CLAIM])
    })
  })
})

describe('other endpoints', () => {
  it('GET /api/tiktok/health (inside the production routes) names missing settings, never values', async () => {
    const ok = await read(await call(`${APP_ORIGIN}/api/tiktok/health`))
    expect(ok).toMatchObject({ status: 200, body: { ok: true, missing: [], malformed: [], problems: [], schema: 'ok' } })
    const bad = await read(await call(`${APP_ORIGIN}/api/tiktok/health`, {}, { SUPABASE_SECRET_KEY: '', ALLOWED_ORIGINS: 'app.example.com' }))
    expect(bad.status).toBe(503)
    expect(bad.body).toMatchObject({ ok: false, missing: ['SUPABASE_SECRET_KEY'], malformed: ['ALLOWED_ORIGINS'] })
  })

  it('health says what is wrong with each setting in fixed words, never quoting the value', async () => {
    const shortSecret = 'short-state-secret-9f8e7d'
    const badKey = 'k1:bm90LTMyLWJ5dGVz'
    const r = await read(
      await call(
        `${APP_ORIGIN}/api/tiktok/health`,
        {},
        {
          STATE_SECRET: shortSecret,
          TIKTOK_APP_SECRET: '  ',
          UPSTREAM_TIMEOUT_MS: '90000',
          TOKEN_ENCRYPTION_KEY: badKey,
          TIKTOK_AUTH_URL: 'https://user:pw@business-api.tiktok.com/portal/auth',
        },
      ),
    )
    expect(r.status).toBe(503)
    expect(r.body).toEqual({
      ok: false,
      // The settings do not allow asking the database.
      schema: 'unknown',
      schema_file: 'supabase/migrations/20261125000000_tiktok_connect.sql',
      missing: ['TIKTOK_APP_SECRET'],
      malformed: ['TIKTOK_AUTH_URL', 'STATE_SECRET', 'UPSTREAM_TIMEOUT_MS', 'TOKEN_ENCRYPTION_KEY'],
      problems: [
        { name: 'TIKTOK_APP_SECRET', problem: 'missing', reason: 'not set' },
        { name: 'TIKTOK_AUTH_URL', problem: 'malformed', reason: 'must be an http(s) URL without a user name or password' },
        { name: 'STATE_SECRET', problem: 'malformed', reason: 'must be at least 32 bytes (make one: openssl rand -base64 48)' },
        { name: 'UPSTREAM_TIMEOUT_MS', problem: 'malformed', reason: 'must be a whole number from 1 to 30000' },
        { name: 'TOKEN_ENCRYPTION_KEY', problem: 'malformed', reason: expect.stringContaining('<key id>:<base64 of 32 bytes>') },
      ],
    })
    for (const value of [shortSecret, badKey, 'bm90LTMyLWJ5dGVz', 'user:pw', '90000']) expect(JSON.stringify(r.body)).not.toContain(value)
  })

  it('health names a webhook receiver without a valid secret, and malformed sweep settings', async () => {
    const health = async (bindings: Record<string, string>) => read(await call(`${APP_ORIGIN}/api/tiktok/health`, {}, bindings))
    const url = 'https://hooks.example.com/tiktok/events'
    const secret = `whsec_${testKeyBase64(3)}`
    expect(await health({ WEBHOOK_URL: url, WEBHOOK_SECRET: secret })).toMatchObject({ status: 200, body: { ok: true } })
    // A secret alone is harmless: nothing is sent without a receiver.
    expect(await health({ WEBHOOK_SECRET: secret })).toMatchObject({ status: 200 })
    expect(await health({ WEBHOOK_URL: url })).toMatchObject({
      status: 503,
      body: {
        missing: ['WEBHOOK_SECRET'],
        malformed: [],
        problems: [{ name: 'WEBHOOK_SECRET', problem: 'missing', reason: 'required when WEBHOOK_URL is set' }],
      },
    })
    for (const bad of [
      'k'.repeat(40),
      `whsec_${btoa('short')}`,
      `whsec_${btoa('k'.repeat(32)).slice(0, -1)}`,
      `whsec_ ${btoa('k'.repeat(32))}`,
      `whsec_${btoa('k'.repeat(65))}`,
    ]) {
      const r = await health({ WEBHOOK_URL: url, WEBHOOK_SECRET: bad })
      expect(r, bad).toMatchObject({ status: 503, body: { problems: [{ name: 'WEBHOOK_SECRET', problem: 'malformed' }] } })
      expect(JSON.stringify(r.body)).not.toContain(bad)
    }
    expect(await health({ WEBHOOK_URL: 'hooks.example.com', WEBHOOK_SECRET: secret })).toMatchObject({
      status: 503,
      body: { missing: [], malformed: ['WEBHOOK_URL'] },
    })
    // Plain http never to another host: payloads name people's ad accounts.
    expect(await health({ WEBHOOK_URL: 'http://hooks.example.com/tiktok', WEBHOOK_SECRET: secret })).toMatchObject({
      status: 503,
      body: { malformed: ['WEBHOOK_URL'] },
    })
    expect(await health({ SWEEP_CONCURRENCY: '0', SWEEP_MAX_PER_RUN: '1001' })).toMatchObject({
      status: 503,
      body: { missing: [], malformed: ['SWEEP_CONCURRENCY', 'SWEEP_MAX_PER_RUN'] },
    })
    // Like every other setting: the routes refuse to run misconfigured rather than half-work.
    const refused = await read(await call(`${APP_ORIGIN}/api/tiktok/connection`, {}, { WEBHOOK_URL: url }))
    expect(refused).toMatchObject({ status: 500, body: { code: 'misconfigured' } })
  })

  it('unknown /api paths answer the JSON envelope with a request id', async () => {
    const r = await read(await call(`${APP_ORIGIN}/api/nope`))
    expect(r.status).toBe(404)
    expect(r.body).toEqual({
      success: false,
      code: 'not_found',
      error: 'There is no GET /api/nope endpoint.',
      retryable: false,
      request_id: expect.any(String),
    })
    expect(r.headers.get('x-request-id')).toBe(r.body.request_id)
  })

  it('a trailing slash reaches the same route (hono/tiny matches /path and /path/ alike)', async () => {
    const r = await read(await call(`${APP_ORIGIN}/api/tiktok/health/`))
    expect(r.status).not.toBe(404)
    expect(r.body).toEqual(await read(await call(`${APP_ORIGIN}/api/tiktok/health`)).then((x) => x.body))
  })
})
