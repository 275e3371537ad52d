// The stand-ins are only worth their contract: these pin the documented TikTok and Supabase
// behaviours the Worker's tests rely on.
import { describe, expect, it } from 'vitest'
import { createSandbox } from '../sandbox/app'
import { accountRow, createSupabase } from '../sandbox/supabase'
import { createTikTok } from '../sandbox/tiktok'

const API = 'https://business-api.tiktok.com/open_api/v1.3'
const tiktok = () =>
  createTikTok({ appId: 'app', appSecret: 'secret', redirectUris: ['https://app.example.com/oauth/callback'], advertisers: [{ id: '7012345678901234567', name: 'A' }] })
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
    expect((await t.app.request(`${API}/oauth2/advertiser/get?app_id=app&secret=secret`, { headers: { 'Access-Token': grant.data.access_token } })).status).toBe(404)
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

describe('Supabase stand-in', () => {
  const supabase = () =>
    createSupabase({ url: 'https://abc.supabase.co', secretKey: 'sb_secret_x', legacyServiceKey: 'eyJlegacy.key.sig', rows: [accountRow('u1', 'a@example.com')] })

  it('checks apikey, refuses an sb_secret key as bearer, accepts a legacy JWT key as bearer', async () => {
    const s = await supabase()
    const url = 'https://abc.supabase.co/rest/v1/user_accounts?id=eq.u1&select=id'
    expect((await s.app.request(url)).status).toBe(401)
    expect((await s.app.request(url, { headers: { apikey: 'sb_secret_x' } })).status).toBe(200)
    expect((await s.app.request(url, { headers: { apikey: 'sb_secret_x', authorization: 'Bearer sb_secret_x' } })).status).toBe(401)
    expect((await s.app.request(url, { headers: { apikey: 'eyJlegacy.key.sig', authorization: 'Bearer eyJlegacy.key.sig' } })).status).toBe(200)
  })

  it('PATCH that matches nothing is a success: 204, or 200 [] with return=representation', async () => {
    const s = await supabase()
    const headers = { apikey: 'sb_secret_x', 'content-type': 'application/json' }
    const url = 'https://abc.supabase.co/rest/v1/user_accounts?id=eq.nobody'
    const plain = await s.app.request(url, { method: 'PATCH', headers, body: '{"tiktok_business_id":"1"}' })
    expect(plain.status).toBe(204)
    const rep = await s.app.request(`${url}&select=id`, { method: 'PATCH', headers: { ...headers, prefer: 'return=representation' }, body: '{"tiktok_business_id":"1"}' })
    expect(rep.status).toBe(200)
    expect(await rep.json()).toEqual([])
    const unknownColumn = await s.app.request(url, { method: 'PATCH', headers, body: '{"nope":"1"}' })
    expect((await json(unknownColumn)).code).toBe('PGRST204')
  })

  it('signs in the demo user with an ES256 token that its JWKS verifies', async () => {
    const sandbox = await createSandbox({ origin: 'http://127.0.0.1:8790', workerOrigins: [], appId: 'a', appSecret: 's', supabaseSecretKey: 'sb_secret_x' })
    const res = await sandbox.app.request('http://127.0.0.1:8790/supabase/auth/v1/token?grant_type=password', post({ email: 'demo@example.com', password: 'demo-password' }))
    const { access_token } = await json(res)
    const [header] = access_token.split('.')
    expect(JSON.parse(atob(header.replace(/-/g, '+').replace(/_/g, '/')))).toMatchObject({ alg: 'ES256', typ: 'JWT' })
    const jwks = await json(sandbox.app.request('http://127.0.0.1:8790/supabase/auth/v1/.well-known/jwks.json'))
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' })
    expect(jwks.keys[0].d).toBeUndefined()
    const wrong = await sandbox.app.request('http://127.0.0.1:8790/supabase/auth/v1/token?grant_type=password', post({ email: 'demo@example.com', password: 'x' }))
    expect(wrong.status).toBe(400)
  })
})
