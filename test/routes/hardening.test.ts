import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  APP_ORIGIN,
  asUser,
  BIG_ID,
  BIG_ID_2,
  call,
  connect,
  exchange,
  type Harness,
  harness,
  OTHER_USER_ID,
  expectNoLeaks,
  start,
  twinSubmissions,
  USER_ID,
  chooseAdvertiser,
} from '../harness'

/**
 * What an earlier outside security review reproduced: claim ownership, grants left live, the binding
 * cookie, the advertiser choice, throttling, 405s. Named after the behaviour each test holds.
 */
let h: Harness
let tokenFor: string
beforeEach(async () => {
  h = await harness()
  tokenFor = await h.supabase.signAccessToken(USER_ID)
})
afterEach(async () => {
  await expectNoLeaks(h)
})

const json = async (res: Response) => ({ status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> })
const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, any>)
const tokenExchanges = () => h.tiktokCalls('/access_token/')
const choose = (body: Record<string, unknown>, headers: Record<string, string> = {}) => chooseAdvertiser(h, body, { headers })

describe('claim ownership comes from the Worker, not from X-Request-Id', () => {
  it('two submissions sending the same X-Request-Id make one TikTok exchange and keep the claim', async () => {
    const s = await start(h)
    const code = h.tiktok.issueCode()
    const same = { 'x-request-id': 'same-id' }
    const [a, b] = await twinSubmissions(h, () => exchange({ state: s.state, authCode: code, cookie: s.cookie, headers: same }, {}))
    expect([a.status, b.status]).toEqual([200, 200])
    expect(tokenExchanges()).toHaveLength(1)
    expect(await h.exchanges()).toMatchObject([{ status: 'done' }])
    expect((await h.exchanges())[0]!.claimed_by).not.toBe('same-id')
    // The Worker's own id answers; the client's is given back beside it for correlation.
    expect(a.headers.get('x-request-id')).not.toBe('same-id')
    expect(a.headers.get('x-client-request-id')).toBe('same-id')
  })
})

describe('a grant is not left live at TikTok when a later step fails', () => {
  const issuedToken = () => h.tiktokCalls('/advertiser/get/')[0]!.headers['access-token']!

  it('the advertiser list fails → the new token is revoked, logged as tiktok.revoke with the reason', async () => {
    h.tiktok.faults.add('advertisers', { tiktokCode: 50000 }, 3)
    const s = await start(h)
    const r = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }))
    expect(r).toMatchObject({ status: 502, body: { code: 'tiktok_unavailable' } })
    const token = issuedToken()
    expect(h.tiktok.tokenIsLive(token)).toBe(false)
    expect(JSON.parse(h.tiktokCalls('/revoke_token/')[0]!.body)).toMatchObject({ access_token: token })
    expect(lines().find((l) => l.event === 'tiktok.revoke')).toMatchObject({ outcome: 'ok', reason: 'tiktok_unavailable' })
    expect((await h.row(USER_ID)).access_token).toBeNull()
  })

  it('the completion write fails → the claim is released first, then the token is revoked', async () => {
    h.supabase.faults.add('rpc', { status: 503 }, 2)
    const s = await start(h)
    const r = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }))
    expect(r).toMatchObject({ status: 502, body: { code: 'storage_unavailable' } })
    expect(h.tiktok.tokenIsLive(issuedToken())).toBe(false)
    expect(await h.exchanges()).toMatchObject([{ status: 'released' }])
    expect(lines().find((l) => l.event === 'tiktok.revoke')).toMatchObject({ reason: 'storage_unavailable' })
  })

  /** RPCs whose answer is lost after the database ran them (`lost`), or that never reach it (`down`). */
  const breakRpcs = (rpcs: { lost: string[]; down?: string[] }) => {
    const harnessFetch = vi.mocked(globalThis.fetch).getMockImplementation()!
    const among = (url: string, names: string[] = []) => names.some((name) => url.endsWith(`/rpc/${name}`))
    vi.mocked(globalThis.fetch).mockImplementation(async (input, init) => {
      const url = new Request(input, init).url
      if (among(url, rpcs.down)) return new Response('gateway down', { status: 503 })
      const answer = await harnessFetch(input, init)
      return among(url, rpcs.lost) ? new Response('upstream gone', { status: 503 }) : answer
    })
  }

  it('a completion that committed but whose answer was lost is not revoked: it answers the stored connection', async () => {
    breakRpcs({ lost: ['tiktok_complete_exchange'] })
    const s = await start(h)
    const r = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }))
    expect(r).toMatchObject({ status: 200, body: { success: true, business_id: BIG_ID } })
    expect(h.tiktokCalls('/revoke_token/')).toEqual([])
    expect(h.tiktok.tokenIsLive(issuedToken())).toBe(true)
    expect((await h.row(USER_ID)).access_token).toBe(issuedToken())
  })

  it('when the release after a lost completion answer fails too, nothing is revoked (the connection may be stored)', async () => {
    breakRpcs({ lost: ['tiktok_complete_exchange'], down: ['tiktok_release_exchange'] })
    const s = await start(h)
    const r = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }))
    expect(r).toMatchObject({ status: 502, body: { code: 'storage_unavailable' } })
    expect(h.tiktokCalls('/revoke_token/')).toEqual([])
    expect(h.tiktok.tokenIsLive(issuedToken())).toBe(true)
    expect(lines().find((l) => l.event === 'tiktok.revoke')).toMatchObject({ outcome: 'skipped', reason: 'storage_unavailable', release: 'unknown' })
  })

  it('a failure before TikTok granted anything revokes nothing', async () => {
    h.tiktok.faults.add('token', { tiktokCode: 40110 })
    const s = await start(h)
    expect((await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie })).status).toBe(400)
    expect(h.tiktokCalls('/revoke_token/')).toEqual([])
  })
})

describe('the binding cookie cannot be tossed from a sibling subdomain', () => {
  it('/start sets __Host-tiktok_oauth_binding (Secure, Path=/, HttpOnly, SameSite=Lax, no Domain)', async () => {
    const s = await start(h)
    const cookie = s.response.headers.get('set-cookie')!
    expect(cookie.split(';')[0]).toBe(`__Host-tiktok_oauth_binding=${s.cookie}`)
    expect(cookie).toMatch(/; Path=\/(;|$)/)
    expect(cookie).toMatch(/; Secure/)
    expect(cookie).toMatch(/; HttpOnly/)
    expect(cookie).toMatch(/; SameSite=Lax/)
    expect(cookie).not.toMatch(/domain/i)
  })

  it("an attacker's binding planted under the old, Domain-settable name is ignored", async () => {
    // The attacker starts a flow in their own browser and plants their binding in the victim's
    // browser with `Domain=example.com`; only a __Host- cookie is trusted, so it does not count.
    const attacker = await start(h, { userId: OTHER_USER_ID })
    const r = await json(
      await exchange({ state: attacker.state, authCode: h.tiktok.issueCode(), headers: { cookie: `tiktok_oauth_binding=${attacker.cookie}` } }),
    )
    expect(r).toMatchObject({ status: 403, body: { code: 'state_not_bound' } })
    expect(h.tiktok.requests).toEqual([])
    expect((await h.row(OTHER_USER_ID)).access_token).toBeNull()
  })

  it('a Cookie header carrying the binding cookie twice is refused (403 state_not_bound)', async () => {
    const s = await start(h)
    const other = await start(h)
    for (const cookie of [
      `__Host-tiktok_oauth_binding=${s.cookie}; __Host-tiktok_oauth_binding=${other.cookie}`,
      `__Host-tiktok_oauth_binding=${other.cookie}; __Host-tiktok_oauth_binding=${s.cookie}`,
      `__Host-tiktok_oauth_binding=${s.cookie}; __Host-tiktok_oauth_binding=${s.cookie}`,
    ]) {
      const r = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), headers: { cookie } }))
      expect(r).toMatchObject({ status: 403, body: { code: 'state_not_bound' } })
    }
    expect(
      lines()
        .filter((l) => l.code === 'state_not_bound')
        .map((l) => l.reason),
    ).toEqual(['duplicate_cookie', 'duplicate_cookie', 'duplicate_cookie'])
    expect(h.tiktok.requests).toEqual([])
  })
})

describe('the advertiser choice', () => {
  it('one scheme per endpoint: a ticket chooses for its own user whatever bearer token comes along, and the bearer endpoint takes no ticket', async () => {
    const alice = await connect(h)
    const bobToken = await h.supabase.signAccessToken(OTHER_USER_ID)
    const r = await choose({ ticket: alice.body.selection.ticket, advertiser_id: BIG_ID_2 }, { authorization: `Bearer ${bobToken}` })
    expect(r).toMatchObject({ status: 200, body: { advertiser: { id: BIG_ID_2 } } })
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID_2)
    expect((await h.row(OTHER_USER_ID)).advertiser_id).toBeNull()
    // Bob's token at the product's endpoint: Bob has no connection, and Alice's ticket in the body is not read.
    const bob = await asUser(h, '/api/tiktok/advertiser', {
      userId: OTHER_USER_ID,
      method: 'POST',
      headers: { origin: APP_ORIGIN },
      body: JSON.stringify({ advertiser_id: BIG_ID, ticket: alice.body.selection.ticket }),
    })
    expect(bob).toMatchObject({ status: 404, body: { code: 'not_connected' } })
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID_2)
  })

  it('a ticket from before a reconnect is stale (400 invalid_ticket), even for an id the new grant lacks', async () => {
    const first = await connect(h)
    // Reconnect: the new grant covers only the first advertiser.
    const s = await start(h)
    const again = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode([BIG_ID]), cookie: s.cookie }))
    expect(again.body).toMatchObject({ success: true, advertisers: [{ id: BIG_ID, name: 'Brand A' }] })
    // Sent with the first flow's cookie, so what refuses it is the connection it names, not the browser.
    const fromFirstFlow = { cookie: first.started.cookie }
    const r = await chooseAdvertiser(h, { ticket: first.body.selection.ticket, advertiser_id: BIG_ID_2 }, fromFirstFlow)
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_ticket' } })
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
    // Even an id the new grant has: the ticket names the old connection.
    expect(await chooseAdvertiser(h, { ticket: first.body.selection.ticket, advertiser_id: BIG_ID }, fromFirstFlow)).toMatchObject({
      status: 400,
      body: { code: 'invalid_ticket' },
    })
  })

  it('the chosen id is checked against the list stored now, not one carried by the ticket', async () => {
    const first = await connect(h)
    // The stored list shrinks (as a later verification would record it); the ticket is still current.
    await h.sql(`update public.tiktok_connections set advertisers = $1::jsonb where user_id = $2 returning user_id`, [
      JSON.stringify([{ id: BIG_ID, name: 'Brand A' }]),
      USER_ID,
    ])
    const r = await choose({ ticket: first.body.selection.ticket, advertiser_id: BIG_ID_2 })
    expect(r).toMatchObject({ status: 403, body: { code: 'advertiser_not_allowed' } })
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
  })

  it('reopening the original callback after a choice answers what is stored now', async () => {
    const first = await connect(h)
    expect(await choose({ ticket: first.body.selection.ticket, advertiser_id: BIG_ID_2 })).toMatchObject({ status: 200 })
    const replay = await json(await exchange({ state: first.started.state, authCode: first.code, cookie: first.started.cookie }))
    expect(replay).toMatchObject({ status: 200, body: { success: true, business_id: BIG_ID_2, account_id: 'Brand B', return_to: '/profile' } })
    expect(tokenExchanges()).toHaveLength(1)
    // The replay's ticket is for the live connection: choosing again with it works.
    expect(await choose({ ticket: replay.body.selection.ticket, advertiser_id: BIG_ID })).toMatchObject({ status: 200, body: { advertiser: { id: BIG_ID } } })
  })

  it('after a disconnect, reopening the callback does not offer the old connection (409 state_used)', async () => {
    const first = await connect(h)
    await asUser(h, '/api/tiktok/connection', { method: 'DELETE' })
    const replay = await json(await exchange({ state: first.started.state, authCode: first.code, cookie: first.started.cookie }))
    expect(replay).toMatchObject({ status: 409, body: { code: 'state_used' } })
  })
})

describe('abuse is throttled', () => {
  // A test-only limiter (vitest.config.ts): 3 a minute, the real binding's behaviour at a small limit.
  const { TIGHT_RATE_LIMIT } = env as unknown as { TIGHT_RATE_LIMIT: RateLimit }
  const tight = { USER_RATE_LIMIT: TIGHT_RATE_LIMIT, CLIENT_RATE_LIMIT: TIGHT_RATE_LIMIT }

  /**
   * Calls until refused (the local window is fixed and clock-aligned, so the limit of 3 may reset
   * once in between). The refused call made no upstream request.
   */
  async function untilRefused(send: () => Promise<Response>): Promise<{ accepted: number; refused: Awaited<ReturnType<typeof json>> }> {
    for (let accepted = 0; accepted < 8; accepted++) {
      const before = { tiktok: h.tiktok.requests.length, supabase: h.supabase.requests.length }
      const res = await json(await send())
      if (res.status === 429) {
        expect({ tiktok: h.tiktok.requests.length, supabase: h.supabase.requests.length }).toEqual(before)
        return { accepted, refused: res }
      }
    }
    throw new Error('never refused')
  }

  const expectRateLimited = (refused: Awaited<ReturnType<typeof json>>) => {
    expect(refused.body).toMatchObject({ success: false, code: 'rate_limited', retryable: true })
    expect(refused.body.error).toMatch(/wait 60 seconds/i)
    expect(refused.headers.get('retry-after')).toBe('60')
  }

  it('/start is limited per user', async () => {
    const token = await h.supabase.signAccessToken(USER_ID)
    const send = () =>
      call(`${APP_ORIGIN}/api/tiktok/oauth/start`, { method: 'POST', headers: { authorization: `Bearer ${token}`, origin: APP_ORIGIN } }, tight)
    const { accepted, refused } = await untilRefused(send)
    expect(accepted).toBeGreaterThanOrEqual(3)
    expectRateLimited(refused)
    expect(refused.headers.get('set-cookie')).toBeNull()
    // Another user is not affected.
    const other = await h.supabase.signAccessToken(OTHER_USER_ID)
    const res = await call(`${APP_ORIGIN}/api/tiktok/oauth/start`, { method: 'POST', headers: { authorization: `Bearer ${other}`, origin: APP_ORIGIN } }, tight)
    expect(res.status).toBe(200)
  })

  it('/exchange is limited per client address: TikTok and Supabase are not called', async () => {
    const s = await start(h)
    const from = (address: string) => () =>
      exchange(
        { state: s.state, authCode: `random-${crypto.randomUUID()}`, cookie: s.cookie, headers: { 'cf-connecting-ip': address } },
        {
          CLIENT_RATE_LIMIT: TIGHT_RATE_LIMIT,
        },
      )
    expectRateLimited((await untilRefused(from('198.51.100.7'))).refused)
    // Another address is counted apart; an IPv6 /64 counts as one client.
    expect((await from('198.51.100.8')()).status).not.toBe(429)
    expectRateLimited((await untilRefused(from('2001:db8:1:2::a'))).refused)
    expect((await from('2001:db8:1:2:ffff::b')()).status).toBe(429)
  })

  it('/exchange is limited per user too, whatever the address', async () => {
    const s = await start(h)
    let n = 0
    const send = () =>
      exchange(
        { state: s.state, authCode: `random-${n}`, cookie: s.cookie, headers: { 'cf-connecting-ip': `198.51.100.${++n}` } },
        { USER_RATE_LIMIT: TIGHT_RATE_LIMIT },
      )
    expectRateLimited((await untilRefused(send)).refused)
  })

  it('?verify=true is limited per user; the plain status read is not', async () => {
    await connect(h)
    const { refused } = await untilRefused(() =>
      call(`${APP_ORIGIN}/api/tiktok/connection?verify=true`, { headers: { authorization: `Bearer ${tokenFor}`, origin: APP_ORIGIN } }, tight),
    )
    expectRateLimited(refused)
    const plain = await call(`${APP_ORIGIN}/api/tiktok/connection`, { headers: { authorization: `Bearer ${tokenFor}`, origin: APP_ORIGIN } }, tight)
    expect(plain.status).toBe(200)
  })

  it('/advertiser and DELETE /connection are limited per user', async () => {
    await connect(h)
    const headers = { authorization: `Bearer ${tokenFor}`, origin: APP_ORIGIN, 'content-type': 'application/json' }
    const picked = await untilRefused(() =>
      call(`${APP_ORIGIN}/api/tiktok/advertiser`, { method: 'POST', headers, body: JSON.stringify({ advertiser_id: BIG_ID_2 }) }, tight),
    )
    expectRateLimited(picked.refused)
    const removed = await untilRefused(() => call(`${APP_ORIGIN}/api/tiktok/connection`, { method: 'DELETE', headers }, tight))
    expectRateLimited(removed.refused)
  })

  it('one state with many random codes: 5 failed exchanges, then 409 state_locked, even for a valid code', async () => {
    const s = await start(h)
    for (let i = 0; i < 5; i++) {
      const r = await json(await exchange({ state: s.state, authCode: `guess-${i}`, cookie: s.cookie }))
      expect(r).toMatchObject({ status: 400, body: { code: 'code_invalid_or_used' } })
    }
    const locked = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }))
    expect(locked).toMatchObject({ status: 409, body: { code: 'state_locked', retryable: false } })
    expect(locked.body.error).toMatch(/start the connection again/i)
    expect(tokenExchanges()).toHaveLength(5)
    expect(await h.exchanges()).toMatchObject([{ status: 'released', failed_attempts: 5 }])
    expect((await h.row(USER_ID)).access_token).toBeNull()
  })
})

describe('405 answers carry Allow', () => {
  it.each([
    ['GET', '/api/tiktok/oauth/start', 'POST'],
    ['PUT', '/api/tiktok/oauth/exchange', 'POST'],
    ['GET', '/api/tiktok/advertiser', 'POST'],
    ['PUT', '/api/tiktok/connection', 'GET, HEAD, DELETE'],
  ])('%s %s → 405 with Allow: %s', async (method, path, allow) => {
    const r = await json(await call(`${APP_ORIGIN}${path}`, { method, headers: { origin: APP_ORIGIN } }))
    expect(r.status).toBe(405)
    expect(r.headers.get('allow')).toBe(allow)
    expect(r.body).toMatchObject({ success: false, code: 'method_not_allowed', retryable: false })
    expect(typeof r.body.request_id).toBe('string')
  })
})

describe('client keys', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2::a', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:ffff:0:0:b', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('%s is counted as %s', async (address, key) => {
    const { clientKey } = await import('../../src/middleware/limits')
    expect(clientKey(address)).toBe(key)
  })
})
