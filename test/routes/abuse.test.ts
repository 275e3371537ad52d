import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  APP_ORIGIN,
  asUser,
  BIG_ID,
  BIG_ID_2,
  call,
  chooseAdvertiser,
  connect,
  exchange,
  expectNoLeaks,
  type Harness,
  harness,
  OTHER_USER_ID,
  start,
  testKeyBase64,
  USER_ID,
} from '../harness'

/** What an outside attacker tried against the OAuth endpoints, and what each attempt must meet. */
let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  await expectNoLeaks(h)
})

const json = async (res: Response) => ({ status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> })
const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, any>)
const NAME = '__Host-tiktok_oauth_binding'

describe('a binding cookie planted under a look-alike name', () => {
  // A sibling subdomain can set any of these with Domain=<parent>: the browser applies the __Host-
  // rules only to names that begin with exactly "__Host-". The test's fetch sends a header's
  // non-ASCII text as UTF-8 (it warns that it does), so U+00A0 arrives as the bytes C2 A0, as
  // Chromium sends it, and the Worker reads it decoded again.
  const lookalikes = {
    'a no-break space (U+00A0) before the name': `\u00A0${NAME}`,
    'a zero-width no-break space (U+FEFF) before the name': `\uFEFF${NAME}`,
    'an ideographic space (U+3000) before the name': `\u3000${NAME}`,
    'the prefix in another case': NAME.toLowerCase(),
    'a no-break space after the name': `${NAME}\u00A0`,
  }

  for (const [what, plantedName] of Object.entries(lookalikes)) {
    it(`${what}: alone it binds nothing (403 state_not_bound), and the attacker's grant is not stored`, async () => {
      // The attacker starts a flow on their own account and plants its cookie in the victim's browser;
      // the victim then authorizes at TikTok on the attacker's state.
      const attacker = await start(h, { userId: OTHER_USER_ID })
      const r = await json(await exchange({ state: attacker.state, authCode: h.tiktok.issueCode(), headers: { cookie: `${plantedName}=${attacker.cookie}` } }))
      expect(r).toMatchObject({ status: 403, body: { code: 'state_not_bound' } })
      expect(h.tiktok.requests).toEqual([])
      expect((await h.row(OTHER_USER_ID)).access_token).toBeNull()
      expect(lines().find((l) => l.code === 'state_not_bound')).toMatchObject({ reason: 'no_cookie' })
      expect(lines().find((l) => l.event === 'planted_cookie')).toMatchObject({ level: 'warn', name: NAME, lookalikes: 1 })
    })

    it(`${what}: beside the real cookie, on either side, it does not lock the real flow out`, async () => {
      for (const order of ['planted first', 'planted last']) {
        const planted = await start(h, { userId: OTHER_USER_ID })
        const s = await start(h)
        const pairs = [`${plantedName}=${planted.cookie}`, `${NAME}=${s.cookie}`]
        const cookie = (order === 'planted first' ? pairs : pairs.reverse()).join('; ')
        const r = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), headers: { cookie } }))
        expect(r, order).toMatchObject({ status: 200, body: { success: true, business_id: BIG_ID } })
      }
      expect((await h.row(USER_ID)).connected_at).not.toBeNull()
      expect((await h.row(OTHER_USER_ID)).access_token).toBeNull()
      expect(lines().filter((l) => l.event === 'planted_cookie')).toHaveLength(2)
    })
  }

  it('only SP and HTAB around the name and value are white space (RFC 6265)', async () => {
    const s = await start(h)
    const r = await json(await exchange({ state: s.state, authCode: h.tiktok.issueCode(), headers: { cookie: `other=1;\t ${NAME} \t= ${s.cookie}\t` } }))
    expect(r).toMatchObject({ status: 200, body: { success: true } })
    expect(lines().some((l) => l.event === 'planted_cookie')).toBe(false)
  })

  it('a planted look-alike does not open a selection ticket either', async () => {
    const { body, started } = await connect(h)
    const r = await chooseAdvertiser(
      h,
      { ticket: body.selection.ticket, advertiser_id: BIG_ID_2 },
      { cookie: null, headers: { cookie: `\u00A0${NAME}=${started.cookie}` } },
    )
    expect(r).toMatchObject({ status: 403, body: { code: 'ticket_not_bound' } })
    expect(lines().find((l) => l.event === 'planted_cookie')).toMatchObject({ lookalikes: 1 })
  })
})

describe('the selection ticket works only in the browser that finished the flow', () => {
  it('a leaked ticket used without the cookie, or beside another flow’s cookie, is 403 ticket_not_bound and changes nothing', async () => {
    const { body } = await connect(h)
    const elsewhere = await start(h, { userId: OTHER_USER_ID })
    for (const cookie of [null, elsewhere.cookie]) {
      const r = await chooseAdvertiser(h, { ticket: body.selection.ticket, advertiser_id: BIG_ID_2 }, { cookie })
      expect(r, String(cookie)).toMatchObject({ status: 403, body: { code: 'ticket_not_bound', error: expect.stringContaining('another browser') } })
    }
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
    expect(
      lines()
        .filter((l) => l.code === 'ticket_not_bound')
        .map((l) => l.reason),
    ).toEqual(['no_cookie', 'cookie_mismatch'])
  })

  it('in its own browser it chooses, and the user’s bearer token alone still does without any cookie', async () => {
    const { body } = await connect(h)
    expect(await chooseAdvertiser(h, { ticket: body.selection.ticket, advertiser_id: BIG_ID_2 })).toMatchObject({
      status: 200,
      body: { advertiser: { id: BIG_ID_2 } },
    })
    const token = await h.supabase.signAccessToken(USER_ID)
    const withBearer = await chooseAdvertiser(h, { advertiser_id: BIG_ID }, { cookie: null, headers: { authorization: `Bearer ${token}` } })
    expect(withBearer).toMatchObject({ status: 200, body: { advertiser: { id: BIG_ID } } })
  })
})

describe('junk on /exchange from behind a shared address', () => {
  const { TIGHT_RATE_LIMIT } = env as unknown as { TIGHT_RATE_LIMIT: RateLimit }
  let office = 0

  it('junk counts apart: past its own limit it is answered 429, while a real flow from the same address still connects', async () => {
    // One office NAT per test run of this file: the tight limiter's counts last for the whole file.
    const address = { 'cf-connecting-ip': `203.0.113.${++office}` }
    const tight = { CLIENT_RATE_LIMIT: TIGHT_RATE_LIMIT }
    const real = await start(h)
    const junk = [
      { state: 'not-a-state', authCode: 'x', cookie: real.cookie },
      { state: real.state, authCode: 'x' },
      { state: real.state, authCode: 'x', cookie: 'A'.repeat(43) },
      { state: 'v1.e30.AAAA', authCode: 'x', cookie: real.cookie },
    ]
    const answers = []
    for (const input of junk) answers.push((await json(await exchange({ ...input, headers: address }, tight))).body.code)
    // TIGHT_RATE_LIMIT allows 3 a minute: the fourth junk request is refused by its count.
    expect(answers).toEqual(['invalid_state', 'state_not_bound', 'state_not_bound', 'rate_limited'])
    expect(h.tiktok.requests).toEqual([])
    expect(h.supabaseCalls()).toEqual([])

    const r = await json(await exchange({ state: real.state, authCode: h.tiktok.issueCode(), cookie: real.cookie, headers: address }, tight))
    expect(r).toMatchObject({ status: 200, body: { success: true } })
    expect(
      lines()
        .filter((l) => l.event === 'rate_limit')
        .map((l) => l.scope),
    ).toEqual(['exchange_rejected'])
  })

  it('bodies that are not JSON, or not the exchange’s, count as junk too', async () => {
    const address = { 'cf-connecting-ip': `203.0.113.${++office}` }
    const post = (body: string) =>
      call(
        `${APP_ORIGIN}/api/tiktok/oauth/exchange`,
        { method: 'POST', headers: { 'content-type': 'application/json', origin: APP_ORIGIN, ...address }, body },
        { CLIENT_RATE_LIMIT: TIGHT_RATE_LIMIT },
      ).then(json)
    const answers = []
    for (const body of ['{"state":', '[]', '{"state":', '{}']) answers.push((await post(body)).body.code)
    expect(answers).toEqual(['invalid_json', 'invalid_request', 'invalid_json', 'rate_limited'])
  })

  it('one account replaying its own verified state, refused by its own count, does not use up its address’s', async () => {
    // Counting limiters with the production shape: per user fewer than per address.
    const counts = new Map<string, number>()
    const limiter = (limit: number) => ({
      limit: async ({ key }: { key: string }) => ({ success: counts.set(key, (counts.get(key) ?? 0) + 1).get(key)! <= limit }),
    })
    const limits = { USER_RATE_LIMIT: limiter(3), CLIENT_RATE_LIMIT: limiter(5) } as unknown as Record<string, RateLimit>
    const address = { 'cf-connecting-ip': `203.0.113.${++office}` }
    const attacker = await start(h, { userId: OTHER_USER_ID })
    const code = h.tiktok.issueCode()
    const replays = []
    for (let i = 0; i < 8; i++)
      replays.push((await exchange({ state: attacker.state, authCode: code, cookie: attacker.cookie, headers: address }, limits)).status)
    expect(replays).toEqual([200, 200, 200, 429, 429, 429, 429, 429])
    const victim = await start(h)
    const r = await exchange({ state: victim.state, authCode: h.tiktok.issueCode(), cookie: victim.cookie, headers: address }, limits)
    expect(r.status).toBe(200)
  })

  it('verified flows have their own per-address count', async () => {
    const address = { 'cf-connecting-ip': `203.0.113.${++office}` }
    const answers = []
    for (let i = 0; i < 4; i++) {
      const s = await start(h)
      answers.push(
        (await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie, headers: address }, { CLIENT_RATE_LIMIT: TIGHT_RATE_LIMIT }))
          .status,
      )
    }
    expect(answers).toEqual([200, 200, 200, 429])
    expect(
      lines()
        .filter((l) => l.event === 'rate_limit')
        .map((l) => l.scope),
    ).toEqual(['exchange'])
  })
})

describe('a rate-limit answer from TikTok is never retried', () => {
  it('not even when it comes with an HTTP 5xx', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    h.tiktok.faults.add('advertisers', { status: 503, json: { code: 40100, message: 'Too many requests', request_id: 'r', data: {} } }, 3)
    const r = await asUser(h, '/api/tiktok/connection?verify=true', { headers: { origin: APP_ORIGIN } })
    expect(r).toMatchObject({ status: 429, body: { code: 'tiktok_rate_limited' } })
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
  })

  it('?verify=true meeting 40100 makes one call and answers 429 tiktok_rate_limited, the connection as it was', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    h.tiktok.faults.add('advertisers', { tiktokCode: 40100 }, 3)
    const r = await asUser(h, '/api/tiktok/connection?verify=true', { headers: { origin: APP_ORIGIN } })
    expect(r).toMatchObject({ status: 429, body: { code: 'tiktok_rate_limited' } })
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
    expect(h.sleeps).toEqual([])
    expect((await h.row(USER_ID)).revoked_at).toBeNull()
  })
})

describe('Supabase anonymous users', () => {
  it('are refused everywhere (401 unauthorized, anonymous_user in the log) unless ALLOW_ANONYMOUS_USERS=true', async () => {
    const token = await h.supabase.signAccessToken(USER_ID, { is_anonymous: true })
    const startAs = (bindings?: Record<string, string>) =>
      call(`${APP_ORIGIN}/api/tiktok/oauth/start`, { method: 'POST', headers: { authorization: `Bearer ${token}`, origin: APP_ORIGIN } }, bindings).then(json)
    const refused = await startAs()
    expect(refused).toMatchObject({ status: 401, body: { code: 'unauthorized', error: expect.stringContaining('guest session') } })
    const status = await call(`${APP_ORIGIN}/api/tiktok/connection`, { headers: { authorization: `Bearer ${token}`, origin: APP_ORIGIN } }).then(json)
    expect(status).toMatchObject({ status: 401, body: { code: 'unauthorized' } })
    expect(
      lines()
        .filter((l) => l.code === 'unauthorized')
        .map((l) => l.reason),
    ).toEqual(['anonymous_user', 'anonymous_user'])

    expect(await startAs({ ALLOW_ANONYMOUS_USERS: 'true' })).toMatchObject({ status: 200 })
    // An explicit false, and a signed-in user with is_anonymous: false, are the default.
    expect(await startAs({ ALLOW_ANONYMOUS_USERS: 'false' })).toMatchObject({ status: 401 })
    expect((await start(h, { token: await h.supabase.signAccessToken(USER_ID, { is_anonymous: false }) })).response.status).toBe(200)
    const health = await call(`${APP_ORIGIN}/api/tiktok/health`, {}, { ALLOW_ANONYMOUS_USERS: 'yes' }).then(json)
    expect(health).toMatchObject({ status: 503, body: { malformed: ['ALLOW_ANONYMOUS_USERS'], problems: [{ reason: 'must be true or false' }] } })
  })
})

describe('X-Request-Id from the client', () => {
  it('is never adopted: the Worker answers and logs its own id, and keeps a well-formed client id as client_request_id', async () => {
    const victims = 'req-of-another-user-123'
    const r = await call(`${APP_ORIGIN}/api/tiktok/connection`, { headers: { origin: APP_ORIGIN, 'x-request-id': victims } }).then(json)
    expect(r.status).toBe(401)
    const own = r.headers.get('x-request-id')!
    expect(own).toMatch(/^[0-9a-f-]{36}$/)
    expect(r.body.request_id).toBe(own)
    expect(r.headers.get('x-client-request-id')).toBe(victims)
    const line = lines().find((l) => l.code === 'unauthorized')!
    expect(line).toMatchObject({ request_id: own, client_request_id: victims })

    // One that is not well-formed is neither logged nor given back.
    h.logs.length = 0
    const odd = await call(`${APP_ORIGIN}/api/tiktok/connection`, { headers: { origin: APP_ORIGIN, 'x-request-id': 'has spaces, "quotes"' } })
    expect(odd.headers.get('x-client-request-id')).toBeNull()
    expect(lines().every((l) => !('client_request_id' in l))).toBe(true)
  })
})

describe('settings a production deployment must not run with', () => {
  const health = (bindings: Record<string, string>) => call(`${APP_ORIGIN}/api/tiktok/health`, {}, bindings).then(json)
  const secret = `whsec_${testKeyBase64(5)}`

  it('WEBHOOK_URL: https to a public host only; this machine, private, link-local and metadata hosts only in development', async () => {
    const refused = [
      'http://127.0.0.1:8790/webhooks',
      'http://127.1/webhooks',
      'http://2130706433/webhooks',
      'http://0x7f.0.0.1/webhooks',
      'http://localhost/webhooks',
      'https://127.0.0.1/webhooks',
      'https://localhost/webhooks',
      'https://hooks.localhost/webhooks',
      'https://10.0.0.5/webhooks',
      'https://172.16.3.4/webhooks',
      'https://192.168.1.10/webhooks',
      'https://100.64.0.1/webhooks',
      'https://0.0.0.0/webhooks',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/webhooks',
      'https://[fd00::1]/webhooks',
      'https://[fe80::1]/webhooks',
      'https://[::ffff:127.0.0.1]/webhooks',
      'https://[::ffff:10.0.0.1]/webhooks',
      'https://metadata.google.internal/computeMetadata/v1',
      'https://metadata.google.internal../computeMetadata/v1',
      'https://metadata/computeMetadata/v1',
      'https://printer.local/webhooks',
      'https://router.lan/webhooks',
      'https://nas.home.arpa/webhooks',
      'https://192.0.2.1/webhooks',
      'https://[2002:7f00:1::]/webhooks',
      'https://[2002:a9fe:a9fe::]/webhooks',
      'https://[fec0::1]/webhooks',
      'https://[64:ff9b:1::a00:1]/webhooks',
      'https://[::ffff:0:7f00:1]/webhooks',
      'https://[2001::1]/webhooks',
      'https://[100::1]/webhooks',
    ]
    for (const url of refused) {
      const r = await health({ WEBHOOK_URL: url, WEBHOOK_SECRET: secret })
      expect(r, url).toMatchObject({ status: 503, body: { malformed: ['WEBHOOK_URL'] } })
      expect(r.body.problems[0].reason, url).toContain('ENVIRONMENT=development')
      expect(JSON.stringify(r.body)).not.toContain(url)
    }
    for (const url of [
      'https://hooks.example.com/tiktok',
      'https://8.8.8.8/hook',
      'https://[2606:4700::1111]/hook',
      'https://hooks.example.com.local.example/x',
    ])
      expect(await health({ WEBHOOK_URL: url, WEBHOOK_SECRET: secret }), url).toMatchObject({ status: 200 })

    // Development (sandbox/dev.env) keeps the sandbox's receiver on this machine, plain http included.
    const dev = { ENVIRONMENT: 'development', WEBHOOK_SECRET: secret }
    for (const url of ['http://127.0.0.1:8790/webhooks', 'http://localhost:8790/webhooks', 'https://10.0.0.5/webhooks'])
      expect(await health({ ...dev, WEBHOOK_URL: url }), url).toMatchObject({ status: 200 })
    expect(await health({ ...dev, WEBHOOK_URL: 'http://hooks.example.com/tiktok' })).toMatchObject({ status: 503, body: { malformed: ['WEBHOOK_URL'] } })
  })

  it('the committed sandbox secrets only with ENVIRONMENT=development', async () => {
    const sandbox = { STATE_SECRET: 'sandbox-state-secret-not-for-production-use-0000', WEBHOOK_SECRET: 'whsec_urNtZMz38YqZvYOTDS9oRKrB2JBpPCxf24sC/Oe8+js=' }
    const r = await health(sandbox)
    expect(r).toMatchObject({ status: 503, body: { malformed: ['STATE_SECRET', 'WEBHOOK_SECRET'] } })
    expect(r.body.problems[0].reason).toContain('committed sandbox value')
    for (const value of Object.values(sandbox)) expect(JSON.stringify(r.body)).not.toContain(value)
    // Spelled otherwise but used the same: with the white space the Worker trims, or another base64
    // spelling of the same key bytes (which is no valid setting at all).
    for (const padded of ['\n', ' ', '\r\n', '\t'])
      expect(
        await health({ STATE_SECRET: sandbox.STATE_SECRET + padded, WEBHOOK_SECRET: padded + sandbox.WEBHOOK_SECRET }),
        JSON.stringify(padded),
      ).toMatchObject({
        status: 503,
        body: { malformed: ['STATE_SECRET', 'WEBHOOK_SECRET'] },
      })
    expect(await health({ WEBHOOK_SECRET: sandbox.WEBHOOK_SECRET.replace('+js=', '+jt=') })).toMatchObject({
      status: 503,
      body: { malformed: ['WEBHOOK_SECRET'] },
    })
    expect(await health({ ...sandbox, ENVIRONMENT: 'development' })).toMatchObject({ status: 200 })
    // The committed service key under another id, or beside a real one, is still the committed key.
    const committedKey = 'sandbox-service-key-not-for-production-0001'
    for (const spec of [`prod:${committedKey}`, `sandbox:${committedKey},real:${'r8Kq2mX9vLz4Tn7Pw1Yc3Hb6Jd5Fg0Sa'}`, ` sandbox:${committedKey} , `])
      expect(await health({ SERVICE_KEYS: spec }), spec).toMatchObject({ status: 503, body: { malformed: ['SERVICE_KEYS'] } })
    expect(await health({ ...sandbox, ENVIRONMENT: 'production' })).toMatchObject({ status: 503 })
  })

  it('secrets and keys with fewer than 8 distinct bytes, everywhere', async () => {
    const zeros = (n: number) => btoa(String.fromCharCode(...new Uint8Array(n)))
    const cases: [Record<string, string>, string][] = [
      [{ STATE_SECRET: 'a'.repeat(48) }, 'STATE_SECRET'],
      [{ STATE_SECRET: 'abcdabcdabcdabcdabcdabcdabcdabcdabcd' }, 'STATE_SECRET'],
      [{ WEBHOOK_SECRET: `whsec_${zeros(24)}` }, 'WEBHOOK_SECRET'],
      [{ TOKEN_ENCRYPTION_KEY: `k1:${zeros(32)}` }, 'TOKEN_ENCRYPTION_KEY'],
      [{ TOKEN_ENCRYPTION_KEY: `k2:${testKeyBase64(2)},k1:${zeros(32)}` }, 'TOKEN_ENCRYPTION_KEY'],
    ]
    for (const [bindings, name] of cases)
      for (const environment of ['production', 'development']) {
        const r = await health({ ...bindings, ENVIRONMENT: environment })
        expect(r, `${name} in ${environment}`).toMatchObject({
          status: 503,
          body: { malformed: [name], problems: [{ name, reason: expect.stringContaining('distinct bytes') }] },
        })
        for (const value of Object.values(bindings)) expect(JSON.stringify(r.body)).not.toContain(value)
      }
    expect(await health({ TOKEN_ENCRYPTION_KEY: `k1:${testKeyBase64(1)}`, WEBHOOK_SECRET: secret })).toMatchObject({ status: 200 })
  })
})
