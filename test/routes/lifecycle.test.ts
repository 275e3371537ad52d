import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { SupabaseStore } from '../../src/supabase'
import { hmacKey, TokenSigner } from '../../src/signed'
import { mintTicket } from '../../src/ticket'
import { decryptToken } from '../../src/token-crypto'
import {
  ADVERTISERS,
  APP_ORIGIN,
  asUser,
  BIG_ID,
  BIG_ID_2,
  call,
  connect,
  exchange,
  type Harness,
  harness,
  hold,
  pastDeadlines,
  OTHER_USER_ID,
  expectNoLeaks,
  start,
  twinSubmissions,
  testEnv,
  USER_ID,
  chooseAdvertiser,
  testKeyBase64,
  stateBinding,
  testSigner,
} from '../harness'

let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  await expectNoLeaks(h)
})

const withoutTicket = ({ selection: _s, ...rest }: Record<string, unknown>) => rest

describe('single-use, idempotent exchange', () => {
  it('a repeated submission of the same callback gets the same success, with no second TikTok exchange or write', async () => {
    const first = await connect(h)
    expect(first.status).toBe(200)
    const before = { ...(await h.row(USER_ID)) }
    h.supabase.requests.length = 0

    const again = await exchange({ state: first.started.state, authCode: first.code, cookie: first.started.cookie })
    expect(again.status).toBe(200)
    const body = (await again.json()) as Record<string, unknown>
    expect(withoutTicket(body)).toEqual(withoutTicket(first.body))
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
    // One call, the claim, which answers what is stored: nothing written.
    expect(h.supabaseCalls()).toEqual(['POST /rest/v1/rpc/tiktok_claim_exchange'])
    expect(await h.row(USER_ID)).toEqual(before)
  })

  it('two concurrent submissions of the same callback: one exchange, one write, the same answer twice', async () => {
    const s = await start(h)
    const code = h.tiktok.issueCode()
    const [a, b] = await twinSubmissions(h, () => exchange({ state: s.state, authCode: code, cookie: s.cookie }, {}))
    expect([a.status, b.status]).toEqual([200, 200])
    expect(withoutTicket(await b.json())).toEqual(withoutTicket(await a.json()))
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
    expect(h.supabaseCalls().filter((c) => c.endsWith('/rpc/tiktok_complete_exchange'))).toHaveLength(1)
  })

  it('the same state with another code is refused as state_used and writes nothing', async () => {
    const first = await connect(h)
    const before = { ...(await h.row(USER_ID)) }
    const other = await exchange({ state: first.started.state, authCode: h.tiktok.issueCode(), cookie: first.started.cookie })
    expect(other.status).toBe(409)
    expect(await other.json()).toMatchObject({ success: false, code: 'state_used' })
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
    expect(await h.row(USER_ID)).toEqual(before)
  })

  it('a state is consumed only by a success: after a failed exchange it can be used again', async () => {
    const s = await start(h)
    h.tiktok.faults.add('token', { tiktokCode: 40100 })
    const failed = await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie })
    expect(failed.status).toBe(429)
    expect(await h.exchanges()).toMatchObject([{ status: 'released', failed_attempts: 1 }])
    const retried = await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie })
    expect(retried.status).toBe(200)
    expect(await h.exchanges()).toMatchObject([{ status: 'done', user_id: USER_ID }])
  })

  it('makes two TikTok and two Supabase round trips on the happy path', async () => {
    await connect(h)
    expect(h.tiktok.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /open_api/v1.3/oauth2/access_token/',
      'GET /open_api/v1.3/oauth2/advertiser/get/',
    ])
    expect(h.supabaseCalls()).toEqual(['POST /rest/v1/rpc/tiktok_claim_exchange', 'POST /rest/v1/rpc/tiktok_complete_exchange'])
  })
})

describe('POST /api/tiktok/advertiser', () => {
  const choose = (body: Record<string, unknown>, headers: Record<string, string> = {}) => chooseAdvertiser(h, body, { headers })

  it('stores the advertiser chosen with the selection ticket', async () => {
    const { body } = await connect(h)
    const r = await choose({ ticket: body.selection.ticket, advertiser_id: BIG_ID_2 })
    expect(r).toMatchObject({ status: 200, body: { success: true, advertiser: { id: BIG_ID_2, name: 'Brand B' } } })
    expect(await h.row(USER_ID)).toMatchObject({ advertiser_id: BIG_ID_2, advertiser_name: 'Brand B' })
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
  })

  it('refuses an id TikTok did not return for this user with 403', async () => {
    const { body } = await connect(h)
    const r = await choose({ ticket: body.selection.ticket, advertiser_id: '7012345678901230000' })
    expect(r).toMatchObject({ status: 403, body: { code: 'advertiser_not_allowed' } })
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
  })

  it('refuses an expired ticket with 400 ticket_expired and a forged one with 400 invalid_ticket', async () => {
    const { started } = await connect(h)
    const connectedAt = (await h.row(USER_ID)).connected_at as string
    const binding = stateBinding(started.state)
    const old = await mintTicket(testSigner, { userId: USER_ID, connectedAt, binding }, Date.now() - 11 * 60_000)
    expect(await choose({ ticket: old.ticket, advertiser_id: BIG_ID_2 })).toMatchObject({ status: 400, body: { code: 'ticket_expired' } })
    const forged = await mintTicket(
      new TokenSigner(hmacKey('a-different-secret-of-enough-length-000000')),
      { userId: USER_ID, connectedAt, binding },
      Date.now(),
    )
    expect(await choose({ ticket: forged.ticket, advertiser_id: BIG_ID_2 })).toMatchObject({ status: 400, body: { code: 'invalid_ticket' } })
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
  })

  it('lets the product switch later with the user token, from the stored list only', async () => {
    await connect(h)
    expect((await h.row(USER_ID)).advertisers).toEqual(ADVERTISERS)
    const ok = await asUser(h, '/api/tiktok/advertiser', { method: 'POST', body: JSON.stringify({ advertiser_id: BIG_ID_2 }) })
    expect(ok).toMatchObject({ status: 200, body: { advertiser: { id: BIG_ID_2 } } })
    const foreign = await asUser(h, '/api/tiktok/advertiser', { method: 'POST', body: JSON.stringify({ advertiser_id: '42' }) })
    expect(foreign.status).toBe(403)
    const unauthenticated = await choose({ advertiser_id: BIG_ID_2 })
    expect(unauthenticated.status).toBe(401)
  })

  it('after a disconnect: the ticket is stale (400 invalid_ticket), the user token gets 404 not_connected', async () => {
    const { body } = await connect(h)
    await asUser(h, '/api/tiktok/connection', { method: 'DELETE' })
    const r = await choose({ ticket: body.selection.ticket, advertiser_id: BIG_ID_2 })
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_ticket' } })
    const later = await asUser(h, '/api/tiktok/advertiser', { method: 'POST', body: JSON.stringify({ advertiser_id: BIG_ID_2 }) })
    expect(later).toMatchObject({ status: 404, body: { code: 'not_connected' } })
  })

  it('an unexpected failure is a generic 500, logged with its request id', async () => {
    await connect(h)
    vi.spyOn(SupabaseStore.prototype, 'chooseAdvertiser').mockRejectedValue(new TypeError('advertisers.find is not a function'))
    const r = await asUser(h, '/api/tiktok/advertiser', { method: 'POST', body: JSON.stringify({ advertiser_id: BIG_ID_2 }), bindings: {} })
    expect(r).toMatchObject({ status: 500, body: { success: false, code: 'internal_error' } })
    expect(r.body.error).not.toMatch(/TypeError|find/)
    const line = h.logs.map((l) => JSON.parse(l)).find((l) => l.code === 'internal_error')
    expect(line).toMatchObject({ level: 'error', event: 'oauth.failure', request_id: r.body.request_id })
    expect(line.error.name).toBe('TypeError')
  })

  it('validates the id as a decimal string', async () => {
    const r = await choose({ ticket: 'x', advertiser_id: 7012345678901234567 })
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_request' } })
  })
})

describe('GET /api/tiktok/connection', () => {
  it('reports not connected before, the caller’s own connection after, never the token', async () => {
    expect(await asUser(h, '/api/tiktok/connection')).toMatchObject({ status: 200, body: { connected: false, reason: 'not_connected' } })
    await connect(h)
    const mine = await asUser(h, '/api/tiktok/connection')
    expect(mine.status).toBe(200)
    expect(mine.body).toMatchObject({ connected: true, advertiser: { id: BIG_ID, name: 'Brand A' } })
    expect(mine.body.advertisers).toHaveLength(2)
    expect(Date.parse(mine.body.connected_at)).toBeGreaterThan(0)
    expect(JSON.stringify(mine.body)).not.toContain((await h.row(USER_ID)).access_token as string)
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
    // Another user sees only their own (empty) connection.
    expect(await asUser(h, '/api/tiktok/connection', { userId: OTHER_USER_ID })).toMatchObject({ body: { connected: false } })
  })

  it('?verify=true asks TikTok, and records a revoked token as connected: false, reason: revoked', async () => {
    await connect(h)
    const live = await asUser(h, '/api/tiktok/connection?verify=true')
    expect(live.body).toMatchObject({ connected: true, verified: true })
    const check = h.tiktokCalls('/advertiser/get/').at(-1)!
    expect(check.headers['access-token']).toBe((await h.row(USER_ID)).access_token)

    h.tiktok.faults.add('advertisers', { tiktokCode: 40105 })
    const revoked = await asUser(h, '/api/tiktok/connection?verify=true')
    expect(revoked).toMatchObject({ status: 200, body: { connected: false, reason: 'revoked' } })
    expect((await h.row(USER_ID)).revoked_at).toBeTruthy()
    expect(await asUser(h, '/api/tiktok/connection')).toMatchObject({ body: { connected: false, reason: 'revoked' } })
  })

  it('a failing read is asked again once, by the Worker only: 502 after two calls, no hidden waits', async () => {
    h.supabase.faults.add('rest', { status: 503 }, 5)
    const r = await asUser(h, '/api/tiktok/connection')
    expect(r).toMatchObject({ status: 502, body: { code: 'storage_unavailable', retryable: true } })
    expect(h.supabaseCalls()).toEqual(['GET /rest/v1/tiktok_connections', 'GET /rest/v1/tiktok_connections'])
    expect(h.sleeps).toEqual([])
  })

  it('needs a valid Supabase token', async () => {
    const r = await call(`${APP_ORIGIN}/api/tiktok/connection`)
    expect(r.status).toBe(401)
  })
})

describe('DELETE /api/tiktok/connection', () => {
  it('revokes at TikTok and clears the stored connection', async () => {
    await connect(h)
    const token = (await h.row(USER_ID)).access_token as string
    const r = await asUser(h, '/api/tiktok/connection', { method: 'DELETE' })
    expect(r).toMatchObject({ status: 200, body: { success: true, revoked: true, message: 'TikTok is disconnected, and its access is revoked.' } })
    const [revoke] = h.tiktokCalls('/revoke_token/')
    expect(JSON.parse(revoke!.body)).toEqual({ app_id: 'test-app-id', secret: testEnv.TIKTOK_APP_SECRET, access_token: token })
    expect(h.tiktok.tokenIsLive(token)).toBe(false)
    expect(await h.row(USER_ID)).toMatchObject({ access_token: null, advertiser_id: null, advertisers: null, connected_at: null })
    expect(JSON.stringify(r.body)).not.toContain(token)
  })

  it('clears even when TikTok is unreachable, and says the revoke is unconfirmed', async () => {
    await connect(h)
    const stalled = hold()
    h.tiktok.faults.add('revoke', stalled.fault)
    const r = await pastDeadlines(() => asUser(h, '/api/tiktok/connection', { method: 'DELETE', bindings: {} }), stalled)
    expect(r).toMatchObject({ status: 200, body: { success: true, revoked: false } })
    expect(r.body.message).toMatch(/^TikTok is disconnected here, but TikTok could not confirm/)
    expect((await h.row(USER_ID)).access_token).toBeNull()
  })

  it('counts an already invalid token as revoked', async () => {
    await connect(h)
    h.tiktok.faults.add('revoke', { tiktokCode: 40105 })
    expect(await asUser(h, '/api/tiktok/connection', { method: 'DELETE' })).toMatchObject({ body: { revoked: true } })
  })
})

describe('token encryption at rest (TOKEN_ENCRYPTION_KEY)', () => {
  const key = testKeyBase64
  const K1 = `k1:${key(1)}`
  const K2 = `k2:${key(2)}`

  it('stores AES-GCM ciphertext that decryptToken opens for this user only; status and disconnect still work', async () => {
    const r = await connect(h, { bindings: { TOKEN_ENCRYPTION_KEY: K1 } })
    expect(r.status).toBe(200)
    const stored = (await h.row(USER_ID)).access_token as string
    expect(stored).toMatch(/^enc:v1:k1:[\w-]{16}:[\w-]+$/)
    const token = await decryptToken(stored, USER_ID, K1)
    expect(h.tiktok.tokenIsLive(token)).toBe(true)
    await expect(decryptToken(stored, OTHER_USER_ID, K1)).rejects.toThrow()

    // After rotation the old key id still decrypts.
    const verified = await asUser(h, '/api/tiktok/connection?verify=true', { bindings: { TOKEN_ENCRYPTION_KEY: `${K2},${K1}` } })
    expect(verified.body).toMatchObject({ connected: true, verified: true })
    expect(h.tiktokCalls('/advertiser/get/').at(-1)!.headers['access-token']).toBe(token)
    const gone = await asUser(h, '/api/tiktok/connection', { method: 'DELETE', bindings: { TOKEN_ENCRYPTION_KEY: `${K2},${K1}` } })
    expect(gone.body).toMatchObject({ revoked: true })
    expect(h.tiktok.tokenIsLive(token)).toBe(false)
    for (const line of h.logs) expect(line).not.toContain(token)
  })

  it('a token no configured key opens: status says so (500 token_unreadable), disconnect still clears it', async () => {
    await connect(h, { bindings: { TOKEN_ENCRYPTION_KEY: K1 } })
    const unreadable = await asUser(h, '/api/tiktok/connection?verify=true', { bindings: { TOKEN_ENCRYPTION_KEY: K2 } })
    expect(unreadable).toMatchObject({ status: 500, body: { code: 'token_unreadable' } })
    const noKey = await asUser(h, '/api/tiktok/connection?verify=true')
    expect(noKey).toMatchObject({ status: 500, body: { code: 'misconfigured' } })
    const gone = await asUser(h, '/api/tiktok/connection', { method: 'DELETE', bindings: { TOKEN_ENCRYPTION_KEY: K2 } })
    expect(gone).toMatchObject({ status: 200, body: { success: true, revoked: false } })
    expect((await h.row(USER_ID)).access_token).toBeNull()
    expect(h.tiktokCalls('/revoke_token/')).toHaveLength(0)
  })

  it('a malformed key is misconfigured, before anything else happens', async () => {
    const s = await start(h)
    const res = await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, { TOKEN_ENCRYPTION_KEY: 'k1:short' })
    expect(res.status).toBe(500)
    expect(await res.json()).toMatchObject({ code: 'misconfigured' })
    expect(h.tiktok.requests).toEqual([])
  })
})
