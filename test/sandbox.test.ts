// The stand-ins are only worth their contract: these pin the documented TikTok and Supabase
// behaviours the Worker's tests rely on.
import { Webhook } from 'standardwebhooks'
import { describe, expect, it } from 'vitest'
import { createSandbox, DEMO_USER } from '../sandbox/app'
import { createSupabase } from '../sandbox/supabase'
import { database } from './harness'
import { createTikTok } from '../sandbox/tiktok'

const API = 'https://business-api.tiktok.com/open_api/v1.3'
const tiktok = () =>
  createTikTok({
    appId: 'app',
    appSecret: 'secret',
    redirectUris: ['https://app.example.com/oauth/callback'],
    advertisers: [{ id: '7012345678901234567', name: 'A' }],
  })
// Test-side reads: the shapes are what each assertion checks.
const json = async (response: Response | Promise<Response>): Promise<any> => (await response).json()
const post = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
})

describe('TikTok stand-in', () => {
  it('answers HTTP 200 envelopes; codes are single-use; scope ids are bare big integers', async () => {
    const t = tiktok()
    const code = t.issueCode()
    const first = await t.app.request(`${API}/oauth2/access_token/`, post({ app_id: 'app', secret: 'secret', auth_code: code }))
    const text = await first.text()
    expect(first.status).toBe(200)
    expect(text).toContain('7543056879933489153]')
    expect(JSON.parse(text).code).toBe(0)
    const again = await t.app.request(`${API}/oauth2/access_token/`, post({ app_id: 'app', secret: 'secret', auth_code: code }))
    expect(again.status).toBe(200)
    expect((await json(again)).code).toBe(40115)
    const unknown = await t.app.request(`${API}/oauth2/access_token/`, post({ app_id: 'app', secret: 'secret', auth_code: 'nope' }))
    expect((await json(unknown)).code).toBe(40110)
    const wrongSecret = await t.app.request(`${API}/oauth2/access_token/`, post({ app_id: 'app', secret: 'x', auth_code: t.issueCode() }))
    expect((await json(wrongSecret)).code).toBe(40101)
  })

  it('expires codes', async () => {
    const t = createTikTok({ appId: 'app', appSecret: 'secret', redirectUris: [], advertisers: [], codeTtlMs: -1 })
    const res = await t.app.request(`${API}/oauth2/access_token/`, post({ app_id: 'app', secret: 'secret', auth_code: t.issueCode() }))
    expect((await json(res)).code).toBe(40110)
  })

  it('advertiser list: Access-Token header required (40104), GET only (405), trailing slash required (404)', async () => {
    const t = tiktok()
    const grant = await json(t.app.request(`${API}/oauth2/access_token/`, post({ app_id: 'app', secret: 'secret', auth_code: t.issueCode() })))
    const url = `${API}/oauth2/advertiser/get/?app_id=app&secret=secret`
    expect((await json(t.app.request(url))).code).toBe(40104)
    const ok = await t.app.request(url, { headers: { 'Access-Token': grant.data.access_token } })
    expect((await json(ok)).data.list).toEqual([{ advertiser_id: '7012345678901234567', advertiser_name: 'A' }])
    expect((await t.app.request(url, { method: 'POST', headers: { 'Access-Token': grant.data.access_token } })).status).toBe(405)
    expect(
      (await t.app.request(`${API}/oauth2/advertiser/get?app_id=app&secret=secret`, { headers: { 'Access-Token': grant.data.access_token } })).status,
    ).toBe(404)
    // A revoked token answers 40105.
    await t.app.request(`${API}/oauth2/revoke_token/`, post({ app_id: 'app', secret: 'secret', access_token: grant.data.access_token }))
    expect((await json(t.app.request(url, { headers: { 'Access-Token': grant.data.access_token } }))).code).toBe(40105)
  })

  it('authorize page: refuses an unregistered redirect_uri; redirects with auth_code, code and state', async () => {
    const t = tiktok()
    const bad = await t.app.request('https://x/portal/auth?app_id=app&state=s&redirect_uri=https://evil.com/oauth/callback')
    expect(bad.status).toBe(400)
    const page = await t.app.request('https://x/portal/auth?app_id=app&state=s%3C&redirect_uri=https://app.example.com/oauth/callback')
    const html = await page.text()
    expect(html).toContain('value="s&lt;"')
    const form = new URLSearchParams({ app_id: 'app', redirect_uri: 'https://app.example.com/oauth/callback', state: 's', decision: 'authorize' })
    const decided = await t.app.request('https://x/portal/auth/decision', { method: 'POST', body: form })
    const location = new URL(decided.headers.get('location')!)
    expect(location.origin + location.pathname).toBe('https://app.example.com/oauth/callback')
    expect(location.searchParams.get('auth_code')).toBe(location.searchParams.get('code'))
    expect(location.searchParams.get('state')).toBe('s')
    form.set('decision', 'deny')
    const denied = new URL((await t.app.request('https://x/portal/auth/decision', { method: 'POST', body: form })).headers.get('location')!)
    expect(denied.searchParams.has('auth_code')).toBe(false)
  })

  it('scripted faults: by queue or by header', async () => {
    const t = tiktok()
    t.faults.add('token', { tiktokCode: 40100 })
    expect((await json(t.app.request(`${API}/oauth2/access_token/`, post({})))).code).toBe(40100)
    const viaHeader = await t.app.request(`${API}/oauth2/access_token/`, post({}, { 'x-sandbox-fault': JSON.stringify({ status: 503 }) }))
    expect(viaHeader.status).toBe(503)
    const html = await t.app.request(`${API}/oauth2/access_token/`, post({}, { 'x-sandbox-fault': JSON.stringify({ nonJson: true }) }))
    expect(html.headers.get('content-type')).toMatch(/text\/html/)
  })
})

describe('Supabase stand-in: PostgREST over the migrations', () => {
  const U1 = '11111111-1111-4111-8111-111111111111'
  const NOBODY = '99999999-9999-4999-8999-999999999999'
  const REST = 'https://abc.supabase.co/rest/v1'
  const headers = { apikey: 'sb_secret_x', 'content-type': 'application/json' }
  const supabase = () =>
    createSupabase({
      url: 'https://abc.supabase.co',
      secretKey: 'sb_secret_x',
      legacyServiceKey: 'eyJlegacy.key.sig',
      database,
      users: [{ id: U1, email: 'a@example.com' }],
    })

  it('checks apikey, refuses an sb_secret key as bearer, accepts a legacy JWT key as bearer', async () => {
    const s = await supabase()
    const url = `${REST}/profiles?id=eq.${U1}&select=id`
    expect((await s.app.request(url)).status).toBe(401)
    expect(await json(s.app.request(url, { headers: { apikey: 'sb_secret_x' } }))).toEqual([{ id: U1 }])
    expect((await s.app.request(url, { headers: { apikey: 'sb_secret_x', authorization: 'Bearer sb_secret_x' } })).status).toBe(401)
    expect((await s.app.request(url, { headers: { apikey: 'eyJlegacy.key.sig', authorization: 'Bearer eyJlegacy.key.sig' } })).status).toBe(200)
  })

  it('PATCH that matches nothing is a success: 204, or 200 [] with return=representation', async () => {
    const s = await supabase()
    const url = `${REST}/profiles?id=eq.${NOBODY}`
    const plain = await s.app.request(url, { method: 'PATCH', headers, body: '{"display_name":"x"}' })
    expect(plain.status).toBe(204)
    const rep = await s.app.request(`${url}&select=id`, {
      method: 'PATCH',
      headers: { ...headers, prefer: 'return=representation' },
      body: '{"display_name":"x"}',
    })
    expect(rep.status).toBe(200)
    expect(await rep.json()).toEqual([])
    const unknownColumn = await s.app.request(url, { method: 'PATCH', headers, body: '{"nope":"1"}' })
    expect(unknownColumn.status).toBe(400)
    expect((await json(unknownColumn)).code).toBe('PGRST204')
  })

  it('PATCH writes through filters; timestamps and jsonb read back as PostgreSQL renders them', async () => {
    const s = await supabase()
    await database.rows(
      `insert into public.tiktok_connections (user_id, access_token, advertisers, connected_at) values ($1, 't', '[]', now()) returning user_id`,
      [U1],
    )
    const url = `${REST}/tiktok_connections?user_id=eq.${U1}&revoked_at=is.null&select=advertisers,connected_at`
    const body = JSON.stringify({ advertisers: [{ id: '7012345678901234567', name: 'A' }], connected_at: '2026-11-25T10:00:00.123456Z' })
    const rep = await json(s.app.request(url, { method: 'PATCH', headers: { ...headers, prefer: 'return=representation' }, body }))
    expect(rep).toEqual([{ advertisers: [{ id: '7012345678901234567', name: 'A' }], connected_at: '2026-11-25T10:00:00.123456+00:00' }])
    const filtered = await json(s.app.request(`${REST}/tiktok_connections?connected_at=eq.2026-11-25T10:00:00.123456%2B00:00&select=user_id`, { headers }))
    expect(filtered).toEqual([{ user_id: U1 }])
    // The table's own rules hold through PostgREST as anywhere: a malformed list is refused (23514).
    const malformed = await s.app.request(url, { method: 'PATCH', headers, body: JSON.stringify({ advertisers: [{ id: 7012345678901234567, name: 'A' }] }) })
    expect(malformed.status).toBe(400)
    expect((await json(malformed)).code).toBe('23514')
  })

  it("maps PostgreSQL's errors as PostgREST does: 23503 and 23505 are 409, a bad uuid 400", async () => {
    const s = await supabase()
    const claim = (user: string) =>
      s.app.request(`${REST}/tiktok_oauth_exchanges`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ state_nonce: 'n1', user_id: user, code_hash: 'h', claimed_by: 'c' }),
      })
    const missing = await claim(NOBODY)
    expect(missing.status).toBe(409)
    expect((await json(missing)).code).toBe('23503')
    expect((await claim(U1)).status).toBe(201)
    const twice = await claim(U1)
    expect(twice.status).toBe(409)
    expect((await json(twice)).code).toBe('23505')
    const ignored = await s.app.request(`${REST}/tiktok_oauth_exchanges?on_conflict=state_nonce`, {
      method: 'POST',
      headers: { ...headers, prefer: 'resolution=ignore-duplicates,return=representation' },
      body: JSON.stringify({ state_nonce: 'n1', user_id: U1, code_hash: 'h2', claimed_by: 'c2' }),
    })
    expect(await json(ignored)).toEqual([])
    const badUuid = await s.app.request(`${REST}/profiles?id=eq.nobody`, { headers })
    expect(badUuid.status).toBe(400)
    expect((await json(badUuid)).code).toBe('22P02')
  })

  it('a singular answer that is not one row is 406 PGRST116, and its write is rolled back', async () => {
    const s = await supabase()
    const single = { ...headers, accept: 'application/vnd.pgrst.object+json', prefer: 'return=representation' }
    const none = await s.app.request(`${REST}/profiles?id=eq.${NOBODY}`, { headers: single })
    expect(none.status).toBe(406)
    expect((await json(none)).code).toBe('PGRST116')
    const all = await s.app.request(`${REST}/profiles`, { method: 'PATCH', headers: single, body: '{"display_name":"x"}' })
    expect(all.status).toBe(200)
    await database.reset([
      { id: U1, email: 'a@example.com' },
      { id: NOBODY, email: 'b@example.com' },
    ])
    const two = await s.app.request(`${REST}/profiles`, { method: 'PATCH', headers: single, body: '{"display_name":"x"}' })
    expect(two.status).toBe(406)
    expect(await database.rows('select display_name from public.profiles where display_name is not null')).toEqual([])
  })

  it("calls the migrations' functions with typed named arguments; unknown tables and functions are 404", async () => {
    const s = await supabase()
    const rpc = (fn: string, body: unknown) => s.app.request(`${REST}/rpc/${fn}`, { method: 'POST', headers, body: JSON.stringify(body) })
    expect(await json(rpc('tiktok_claim_exchange', { p_state_nonce: 'n2', p_user_id: U1, p_code_hash: 'h', p_claimed_by: 'c' }))).toEqual({
      outcome: 'claimed',
    })
    expect(await json(rpc('tiktok_release_exchange', { p_state_nonce: 'n2', p_claimed_by: 'c' }))).toEqual({ outcome: 'released' })
    expect(await database.rows('select status, failed_attempts from public.tiktok_oauth_exchanges')).toEqual([{ status: 'released', failed_attempts: 1 }])
    const unknownFn = await rpc('tiktok_nope', {})
    expect(unknownFn.status).toBe(404)
    expect((await json(unknownFn)).code).toBe('PGRST202')
    const wrongArgs = await rpc('tiktok_release_exchange', { p_state_nonce: 'n2' })
    expect((await json(wrongArgs)).code).toBe('PGRST202')
    const unknownTable = await s.app.request(`${REST}/nope`, { headers })
    expect(unknownTable.status).toBe(404)
    expect((await json(unknownTable)).code).toBe('PGRST205')
  })

  it('refuses what it does not implement instead of approximating it: order/limit, unknown Prefer, a filter without operator', async () => {
    const s = await supabase()
    for (const query of ['order=email', 'limit=1', 'or=(id.eq.x)']) {
      const res = await s.app.request(`${REST}/profiles?${query}`, { headers })
      expect(res.status, query).toBe(501)
      expect((await json(res)).code).toBe('PGRST_SANDBOX')
    }
    const counted = await s.app.request(`${REST}/profiles`, { headers: { ...headers, prefer: 'count=exact' } })
    expect(counted.status).toBe(501)
    const noOperator = await s.app.request(`${REST}/profiles?email=eqx`, { headers })
    expect(noOperator.status).toBe(400)
    expect((await json(noOperator)).code).toBe('PGRST100')
    const notAnObject = await s.app.request(`${REST}/rpc/tiktok_prune_events`, { method: 'POST', headers, body: 'null' })
    expect(notAnObject.status).toBe(400)
    expect((await json(notAnObject)).code).toBe('PGRST102')
  })

  it('signs in the demo user with an ES256 token that its JWKS verifies', async () => {
    const sandbox = await createSandbox({
      origin: 'http://127.0.0.1:8790',
      workerOrigins: [],
      appId: 'a',
      appSecret: 's',
      supabaseSecretKey: 'sb_secret_x',
      database,
    })
    const res = await sandbox.app.request(
      'http://127.0.0.1:8790/supabase/auth/v1/token?grant_type=password',
      post({ email: 'demo@example.com', password: 'demo-password' }),
    )
    const { access_token } = await json(res)
    const [header] = access_token.split('.')
    expect(JSON.parse(atob(header.replace(/-/g, '+').replace(/_/g, '/')))).toMatchObject({ alg: 'ES256', typ: 'JWT' })
    const jwks = await json(sandbox.app.request('http://127.0.0.1:8790/supabase/auth/v1/.well-known/jwks.json'))
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' })
    expect(jwks.keys[0].d).toBeUndefined()
    const wrong = await sandbox.app.request(
      'http://127.0.0.1:8790/supabase/auth/v1/token?grant_type=password',
      post({ email: 'demo@example.com', password: 'x' }),
    )
    expect(wrong.status).toBe(400)
  })
})

describe('sandbox: advertiser controls at TikTok and the webhook receiver', () => {
  const ORIGIN = 'http://127.0.0.1:8790'
  const SECRET = `whsec_${btoa('sandbox-test-secret-32-bytes-long')}`
  const TIKTOK = `${ORIGIN}/tiktok/open_api/v1.3`
  const ADVERTISERS = [
    { id: '7012345678901234567', name: 'A' },
    { id: '7012345678901234599', name: 'B' },
  ]
  const sandbox = ({ webhookSecret }: { webhookSecret?: string } = { webhookSecret: SECRET }) =>
    createSandbox({
      origin: ORIGIN,
      workerOrigins: [],
      appId: 'a',
      appSecret: 's',
      supabaseSecretKey: 'sb_secret_x',
      database,
      advertisers: ADVERTISERS,
      webhookSecret,
    })
  type Sandbox = Awaited<ReturnType<typeof sandbox>>

  /** A grant as the Worker gets one: a code from the portal exchanged for a token. */
  const grant = async (s: Sandbox): Promise<string> =>
    (await json(s.app.request(`${TIKTOK}/oauth2/access_token/`, post({ app_id: 'a', secret: 's', auth_code: s.tiktok.issueCode() })))).data.access_token
  const list = async (s: Sandbox, token: string) =>
    json(s.app.request(`${TIKTOK}/oauth2/advertiser/get/?app_id=a&secret=s`, { headers: { 'Access-Token': token } }))
  const control = (s: Sandbox, path: string, body: unknown) => s.app.request(`${ORIGIN}/__sandbox/tiktok/${path}`, post(body))

  /** A delivery signed by the reference implementation, as the Worker must sign it. */
  const deliver = (s: Sandbox, body: string, options: { id?: string; secret?: string; tamper?: boolean } = {}) => {
    const id = options.id ?? `msg_${crypto.randomUUID()}`
    const at = new Date()
    const signature = new Webhook(options.secret ?? SECRET).sign(id, at, body)
    return s.app.request(`${ORIGIN}/webhooks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': signature,
      },
      body: options.tamper ? body.replace('connection.revoked', 'connection.connected') : body,
    })
  }
  const deliveries = async (s: Sandbox) => (await json(s.app.request(`${ORIGIN}/webhooks.json`))).deliveries
  const event = (type: string) =>
    JSON.stringify({ id: crypto.randomUUID(), type: `tiktok.connection.${type}`, advertiser: ADVERTISERS[0], detected_by: 'sweep' })

  it("revoke by token, by advertiser or by the page's grant name: the advertiser list then answers 40105, and revoke_token too (one grant, one end)", async () => {
    const s = await sandbox()
    const [t1, t2, t3] = [await grant(s), await grant(s), await grant(s)]
    expect((await list(s, t1)).code).toBe(0)

    expect(await json(control(s, 'revoke', { token: t1 }))).toEqual({ revoked: 1 })
    expect((await list(s, t1)).code).toBe(40105)
    expect((await list(s, t2)).code).toBe(0)
    // Already dead: nothing more to revoke, and the app's own revoke_token call agrees.
    expect(await json(control(s, 'revoke', { token: t1 }))).toEqual({ revoked: 0 })
    expect((await json(s.app.request(`${TIKTOK}/oauth2/revoke_token/`, post({ app_id: 'a', secret: 's', access_token: t1 })))).code).toBe(40105)

    const name = s.tiktok.grants().find((g) => g.token === t2)!.grant
    expect(await json(control(s, 'revoke', { grant: name }))).toEqual({ revoked: 1 })
    expect((await list(s, t2)).code).toBe(40105)
    expect(s.tiktok.tokenIsLive(t3)).toBe(true)

    expect(await json(control(s, 'revoke', { advertiser_id: ADVERTISERS[1]!.id }))).toEqual({ revoked: 1 })
    expect((await list(s, t3)).code).toBe(40105)
    expect(s.tiktok.grants()).toEqual([])
    expect((await control(s, 'revoke', {})).status).toBe(400)
  })

  it("revokeGrant is what the app's revoke_token does: a token revoked there cannot be revoked again here", async () => {
    const s = await sandbox()
    const token = await grant(s)
    expect((await json(s.app.request(`${TIKTOK}/oauth2/revoke_token/`, post({ app_id: 'a', secret: 's', access_token: token })))).code).toBe(0)
    expect(s.tiktok.revokeGrant(token)).toBe(false)
    expect(s.tiktok.revokeGrant('never-issued')).toBe(false)
  })

  it('remove one advertiser from a grant: the list call stops naming it, the token still works; setAdvertisers drops one from every grant', async () => {
    const s = await sandbox()
    const token = await grant(s)
    const other = await grant(s)
    expect(await json(control(s, 'remove-advertiser', { token, advertiser_id: ADVERTISERS[0]!.id }))).toEqual({ changed: 1 })
    const after = await list(s, token)
    expect(after.code).toBe(0)
    expect(after.data.list).toEqual([{ advertiser_id: ADVERTISERS[1]!.id, advertiser_name: 'B' }])
    expect((await list(s, other)).data.list).toHaveLength(2)
    expect((await control(s, 'remove-advertiser', { token })).status).toBe(400)

    s.tiktok.setAdvertisers([ADVERTISERS[0]!])
    expect((await list(s, other)).data.list).toEqual([{ advertiser_id: ADVERTISERS[0]!.id, advertiser_name: 'A' }])
    expect((await list(s, token)).data.list).toEqual([])
  })

  it('the sandbox page lists live grants (token masked, values escaped) with a Revoke access form that posts to itself and comes back', async () => {
    const s = await sandbox()
    s.tiktok.setAdvertisers([{ id: ADVERTISERS[0]!.id, name: '<img src=x onerror=alert(1)>' }])
    const token = await grant(s)
    const page = await (await s.app.request(`${ORIGIN}/`)).text()
    expect(page).toContain('<meta name="viewport"')
    expect(page).toContain(`${token.slice(0, 4)}…${token.slice(-4)}`)
    expect(page).not.toContain(token)
    expect(page).toContain('&lt;img src=x onerror=alert(1)&gt;')
    expect(page).not.toContain('<img')
    expect(page).toContain('action="/__sandbox/tiktok/revoke"')

    const name = s.tiktok.grants()[0]!.grant
    const form = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', host: '127.0.0.1:8790' },
      body: new URLSearchParams({ grant: name }).toString(),
    }
    // Another site's form is refused, so a page elsewhere cannot press the button.
    const crossSite = await s.app.request(`${ORIGIN}/__sandbox/tiktok/revoke`, { ...form, headers: { ...form.headers, origin: 'http://evil.example' } })
    expect(crossSite.status).toBe(403)
    expect(s.tiktok.tokenIsLive(token)).toBe(true)

    const pressed = await s.app.request(`${ORIGIN}/__sandbox/tiktok/revoke`, { ...form, headers: { ...form.headers, origin: ORIGIN } })
    expect(pressed.status).toBe(303)
    expect(pressed.headers.get('location')).toBe('/')
    expect((await list(s, token)).code).toBe(40105)
    expect(await (await s.app.request(`${ORIGIN}/`)).text()).toContain('No live grant')
  })

  it('every control POST refuses another site’s page (a simple cross-site POST), and takes a script’s', async () => {
    const s = await sandbox()
    const token = await grant(s)
    const simple = (path: string, headers: Record<string, string>) =>
      s.app.request(`${ORIGIN}${path}`, { method: 'POST', headers: { 'content-type': 'text/plain', host: '127.0.0.1:8790', ...headers }, body: '{"count": 2}' })
    for (const path of ['/__sandbox/faults', '/__sandbox/codes', '/__sandbox/reset', '/__sandbox/tiktok/revoke', '/__sandbox/tiktok/remove-advertiser'])
      for (const headers of [{ origin: 'http://evil.example' }, { 'sec-fetch-site': 'cross-site' }] as Record<string, string>[]) {
        const r = await simple(path, headers)
        expect(r.status, `${path} ${JSON.stringify(headers)}`).toBe(403)
        expect(await r.json()).toEqual({ error: 'cross-site request refused' })
      }
    // A page that rebound its own name to this machine sends its own Host, and Origin to match.
    const rebound = await simple('/__sandbox/reset', { host: 'attacker.example:8790', origin: 'http://attacker.example:8790' })
    expect(rebound.status).toBe(403)
    // Nothing was reset or revoked, and no fault was queued: the grant still lists its advertisers.
    expect(s.tiktok.grants().map((g) => g.token)).toEqual([token])
    expect((await list(s, token)).code).toBe(0)
    const script = await simple('/__sandbox/codes', {})
    expect(script.status).toBe(200)
    expect(((await script.json()) as { codes: string[] }).codes).toHaveLength(2)
    expect((await simple('/__sandbox/codes', { origin: ORIGIN, 'sec-fetch-site': 'same-origin' })).status).toBe(200)
  })

  it('receiver: a delivery signed with the configured secret is 204 and recorded valid with its payload; attempts count per webhook-id', async () => {
    const s = await sandbox()
    const body = event('revoked')
    const first = await deliver(s, body, { id: 'msg_1' })
    expect(first.status).toBe(204)
    expect((await deliver(s, body, { id: 'msg_1' })).status).toBe(204)
    expect((await deliver(s, event('connected'), { id: 'msg_2' })).status).toBe(204)
    const seen = await deliveries(s)
    expect(seen.map((d: any) => [d.id, d.type, d.valid, d.attempt, d.status])).toEqual([
      ['msg_1', 'tiktok.connection.revoked', true, 1, 204],
      ['msg_1', 'tiktok.connection.revoked', true, 2, 204],
      ['msg_2', 'tiktok.connection.connected', true, 1, 204],
    ])
    expect(seen[0].payload).toEqual(JSON.parse(body))
    expect(Date.parse(seen[0].received_at)).not.toBeNaN()
  })

  it('receiver: a tampered body, another secret, or missing headers are 400 and recorded invalid without a payload', async () => {
    const s = await sandbox()
    const tampered = await deliver(s, event('revoked'), { tamper: true })
    expect(tampered.status).toBe(400)
    expect((await json(tampered)).error).toMatch(/signature/i)
    expect((await deliver(s, event('revoked'), { secret: `whsec_${btoa('another-secret-another-secret-00')}` })).status).toBe(400)
    const unsigned = await s.app.request(`${ORIGIN}/webhooks`, post({ type: 'tiktok.connection.revoked' }))
    expect(unsigned.status).toBe(400)
    const seen = await deliveries(s)
    expect(seen.map((d: any) => [d.type, d.valid, d.status])).toEqual([
      ['tiktok.connection.connected', false, 400],
      ['tiktok.connection.revoked', false, 400],
      ['tiktok.connection.revoked', false, 400],
    ])
    expect(seen.every((d: any) => d.payload === undefined && typeof d.error === 'string')).toBe(true)
  })

  it('receiver without a usable secret refuses every delivery and says why', async () => {
    const s = await sandbox({})
    expect((await deliver(s, event('revoked'))).status).toBe(400)
    expect(await json(s.app.request(`${ORIGIN}/webhooks.json`))).toMatchObject({ secret_configured: false })
    expect(await (await s.app.request(`${ORIGIN}/webhooks`)).text()).toContain('no WEBHOOK_SECRET is configured')
  })

  it('the webhook fault fails the next N deliveries with 500, then the receiver accepts again; reset clears all', async () => {
    const s = await sandbox()
    const scripted = await s.app.request(`${ORIGIN}/__sandbox/faults`, post({ target: 'webhook', fault: { status: 500 }, times: 3 }))
    expect(scripted.status).toBe(200)
    const body = event('revoked')
    const answers: number[] = []
    for (let i = 0; i < 4; i++) answers.push((await deliver(s, body, { id: 'msg_retry' })).status)
    expect(answers).toEqual([500, 500, 500, 204])
    // A failed delivery is still verified: the page tells a signing bug from a scripted failure.
    expect((await deliveries(s)).map((d: any) => [d.attempt, d.valid, d.status])).toEqual([
      [1, true, 500],
      [2, true, 500],
      [3, true, 500],
      [4, true, 204],
    ])
    await s.app.request(`${ORIGIN}/__sandbox/faults`, post({ target: 'webhook', fault: { status: 500 }, times: 1 }))
    await s.app.request(`${ORIGIN}/__sandbox/reset`, { method: 'POST' })
    expect(await deliveries(s)).toEqual([])
    expect((await deliver(s, body, { id: 'msg_retry' })).status).toBe(204)
    expect((await deliveries(s))[0].attempt).toBe(1)
  })

  it('the database page: each row a card of its columns, advertisers as "name — id" (escaped), the token masked, never JSON', async () => {
    const s = await sandbox()
    // createSandbox seeded the demo account.
    const U = DEMO_USER.id
    const token = 'tok_0123456789abcdef'
    expect(await (await s.app.request(`${ORIGIN}/supabase/`)).text()).toContain('No connection yet')
    await database.rows(
      `insert into public.tiktok_connections (user_id, access_token, advertiser_id, advertiser_name, advertisers, connected_at)
       values ($4, $1, $2, '<b>B</b>', $3::jsonb, now()) returning user_id`,
      [token, ADVERTISERS[1]!.id, JSON.stringify([ADVERTISERS[0], { id: ADVERTISERS[1]!.id, name: '<b>B</b>' }]), U],
    )
    const page = await (await s.app.request(`${ORIGIN}/supabase/`)).text()
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1" />')
    expect(page).toContain('<link rel="stylesheet" href="/sandbox.css" />')
    expect(page).toContain(`<li>A — <code>${ADVERTISERS[0]!.id}</code></li>`)
    expect(page).toContain(`<li>&lt;b&gt;B&lt;/b&gt; — <code>${ADVERTISERS[1]!.id}</code> <span class="muted">(chosen)</span></li>`)
    expect(page).toContain('<h2>demo@example.com</h2>')
    expect(page).toContain('<dt>revoked_at</dt><dd><span class="muted">null</span></dd>')
    expect(page).toContain('tok_…cdef')
    expect(page).not.toContain(token)
    expect(page).not.toContain('&quot;id&quot;')
  })

  it('serves one stylesheet for every sandbox page, and a favicon', async () => {
    const s = await sandbox()
    const css = await s.app.request(`${ORIGIN}/sandbox.css`)
    expect(css.headers.get('content-type')).toMatch(/^text\/css/)
    expect(await css.text()).toContain('button.primary')
    for (const path of ['/', '/webhooks', '/supabase/', '/tiktok/portal/auth?app_id=a&state=s&redirect_uri=x']) {
      const page = await (await s.app.request(`${ORIGIN}${path}`)).text()
      expect(page, path).toContain('<link rel="stylesheet" href="/sandbox.css" />')
      expect(page, path).not.toContain('<style')
    }
    const icon = await s.app.request(`${ORIGIN}/favicon.ico`)
    expect(icon.status).toBe(200)
    expect(icon.headers.get('content-type')).toBe('image/x-icon')
    // An ICO directory: reserved 0, type 1.
    expect([...new Uint8Array(await icon.arrayBuffer()).slice(0, 4)]).toEqual([0, 0, 1, 0])
  })

  it('the receiver page escapes what it shows and carries a viewport tag', async () => {
    const s = await sandbox()
    await deliver(s, JSON.stringify({ type: '<script>alert(1)</script>', note: '</pre><b>x' }), { id: '<i>id</i>' })
    await deliver(s, JSON.stringify({ type: '<script>alert(2)</script>' }), { secret: `whsec_${btoa('another-secret-another-secret-00')}` })
    const page = await (await s.app.request(`${ORIGIN}/webhooks`)).text()
    expect(page).toContain('<meta name="viewport" content="width=device-width, initial-scale=1" />')
    expect(page).not.toMatch(/<script>|<i>id|<b>x/)
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(page).toContain('&lt;script&gt;alert(2)&lt;/script&gt;')
    expect(page).toContain('&lt;i&gt;id&lt;/i&gt;')
  })
})
