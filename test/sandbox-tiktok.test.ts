// The TikTok stand-in's tier and its read endpoints: what the Worker's governor and proxy will be
// tested against, so they are pinned here as TikTok's contract.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { createSandbox } from '../sandbox/app'
import { createTikTok, type TikTokOptions } from '../sandbox/tiktok'
import { database } from './harness'

const API = 'https://business-api.tiktok.com/open_api/v1.3'
const A = '7012345678901234567'
const B = '7012345678901234599'
const OUTSIDE = '7099999999999999999'
// Test-side reads: the shapes are what each assertion checks.
const json = async (response: Response | Promise<Response>): Promise<any> => (await response).json()
const post = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

const tiktok = (options: Partial<TikTokOptions> = {}) =>
  createTikTok({
    appId: 'app',
    appSecret: 'secret',
    redirectUris: [],
    advertisers: [
      { id: A, name: 'Brand A' },
      { id: B, name: 'Brand B' },
      { id: OUTSIDE, name: 'Not granted' },
    ],
    ...options,
  })
type TikTok = ReturnType<typeof tiktok>

/** A grant as the Worker gets one: a code for `advertiserIds` exchanged for a token. */
const grant = async (t: TikTok, advertiserIds = [A, B]): Promise<string> =>
  (await json(t.app.request(`${API}/oauth2/access_token/`, post({ app_id: 'app', secret: 'secret', auth_code: t.issueCode(advertiserIds) })))).data.access_token
const read = (t: TikTok, path: string, token?: string) => t.app.request(`${API}${path}`, { headers: token ? { 'Access-Token': token } : {} })
const q = (value: unknown) => encodeURIComponent(JSON.stringify(value))

describe('TikTok stand-in: the tier', () => {
  const clock = (start: number) => {
    let now = start
    return { now: () => now, set: (at: number) => (now = at) }
  }
  const call = (t: TikTok) => json(t.app.request(`${API}/oauth2/advertiser/get/?app_id=app&secret=secret`, { headers: { 'Access-Token': 'nobody' } }))

  it('counts calls in seconds aligned to the clock: beyond qps is 40100, and the next second starts afresh', async () => {
    const time = clock(10_990)
    const t = tiktok({ tier: { qps: 3, qpm: 100 }, now: time.now })
    // Answered (40105: the token is unknown) but counted: only the tier's 40100 is a refusal.
    for (let i = 0; i < 3; i++) expect((await call(t)).code).toBe(40105)
    const refused = await t.app.request(`${API}/oauth2/advertiser/get/?app_id=app&secret=secret`)
    expect(refused.status).toBe(200)
    const text = await refused.text()
    expect(text).toMatch(
      /^\{"code": 40100, "message": "Due to too many requests, requests from App app are temporarily restricted\.", "request_id": "\d+[0-9a-f]+", "data": \{\}\}$/,
    )
    // Ten milliseconds on is another aligned second: a sliding window would still refuse.
    time.set(11_000)
    for (let i = 0; i < 3; i++) expect((await call(t)).code).toBe(40105)
    expect((await call(t)).code).toBe(40100)
    expect(t.tierState()).toEqual({ tier: { qps: 3, qpm: 100 }, refused: { second: 2, minute: 0 }, counted: { second: 3, minute: 6 } })
  })

  it('counts calls in minutes aligned to the clock, refusals by the window that was full', async () => {
    const time = clock(0)
    const t = tiktok({ tier: { qps: 10, qpm: 5 }, now: time.now })
    for (let i = 0; i < 5; i++) {
      time.set(i * 10_000)
      expect((await call(t)).code).toBe(40105)
    }
    time.set(59_999)
    expect((await call(t)).code).toBe(40100)
    time.set(60_000)
    expect((await call(t)).code).toBe(40105)
    expect(t.tierState()).toMatchObject({ refused: { second: 0, minute: 1 }, counted: { second: 1, minute: 1 } })
  })

  it('every API endpoint counts against the one tier; a path TikTok does not serve does not', async () => {
    const time = clock(5_000)
    const t = tiktok({ tier: { qps: 4, qpm: 100 }, now: time.now })
    const token = await grant(t)
    expect((await json(read(t, `/advertiser/info/?advertiser_ids=${q([A])}`, token))).code).toBe(0)
    expect((await json(read(t, `/campaign/get/?advertiser_id=${A}`, token))).code).toBe(0)
    expect((await read(t, '/campaign/get', token)).status).toBe(404)
    expect((await json(t.app.request(`${API}/oauth2/revoke_token/`, post({ app_id: 'app', secret: 'secret', access_token: token })))).code).toBe(0)
    expect((await json(read(t, `/campaign/get/?advertiser_id=${A}`, token))).code).toBe(40100)
    expect(t.tierState().counted.second).toBe(4)
  })

  it('enforces nothing without a tier', async () => {
    const t = tiktok({ now: () => 1_000 })
    for (let i = 0; i < 50; i++) expect((await call(t)).code).toBe(40105)
    expect(t.tierState()).toEqual({ tier: null, refused: { second: 0, minute: 0 }, counted: { second: 0, minute: 0 } })
  })

  it('the sandbox page and /__sandbox/tiktok/quota show what was refused; reset clears it', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.UTC(2026, 11, 1, 12, 0, 0, 500) })
    const ORIGIN = 'http://127.0.0.1:8790'
    const s = await createSandbox({
      origin: ORIGIN,
      workerOrigins: [],
      appId: 'a',
      appSecret: 's',
      supabaseSecretKey: 'sb_secret_x',
      database,
      tiktokTier: { qps: 2, qpm: 600 },
    })
    for (let i = 0; i < 5; i++)
      await s.app.request(`${ORIGIN}/tiktok/open_api/v1.3/oauth2/advertiser/get/?app_id=a&secret=s`, { headers: { 'Access-Token': 'x' } })
    expect(await json(s.app.request(`${ORIGIN}/__sandbox/tiktok/quota`))).toEqual({
      tier: { qps: 2, qpm: 600 },
      refused: { second: 3, minute: 0 },
      counted: { second: 2, minute: 2 },
    })
    const page = await (await s.app.request(`${ORIGIN}/`)).text()
    expect(page).toContain('at most 2 calls in each second and 600 in each minute')
    expect(page).toContain('<dt>Refused: second limit</dt><dd data-refused="second">3</dd>')
    expect(page).toContain('<dt>Refused: minute limit</dt><dd data-refused="minute">0</dd>')
    await s.app.request(`${ORIGIN}/__sandbox/reset`, { method: 'POST' })
    expect(await json(s.app.request(`${ORIGIN}/__sandbox/tiktok/quota`))).toMatchObject({ refused: { second: 0, minute: 0 } })
    const off = await createSandbox({ origin: ORIGIN, workerOrigins: [], appId: 'a', appSecret: 's', supabaseSecretKey: 'sb_secret_x', database })
    expect(await (await off.app.request(`${ORIGIN}/`)).text()).toContain('id="quota-off"')
  })
  afterEach(() => {
    vi.useRealTimers()
  })
})

describe('TikTok stand-in: read endpoints with a connection token', () => {
  it('advertiser/info/: a JSON array of ids in the query, 19-digit ids as exact strings, only the fields asked for', async () => {
    const t = tiktok()
    const token = await grant(t)
    const answer = await read(t, `/advertiser/info/?advertiser_ids=${q([A, B])}`, token)
    const text = await answer.text()
    expect(text).toContain(`"advertiser_id":"${A}"`)
    expect(text).toContain(`"advertiser_id":"${B}"`)
    const body = JSON.parse(text)
    expect(body).toMatchObject({
      code: 0,
      message: 'OK',
      data: { list: [{ advertiser_id: A, name: 'Brand A', status: 'STATUS_ENABLE', currency: 'USD' }, { advertiser_id: B }] },
    })
    expect(typeof body.data.list[0].balance).toBe('number')
    expect(Number.isInteger(body.data.list[0].create_time)).toBe(true)
    const some = await json(read(t, `/advertiser/info/?advertiser_ids=${q([A])}&fields=${q(['advertiser_id', 'name'])}`, token))
    expect(some.data.list).toEqual([{ advertiser_id: A, name: 'Brand A' }])
    expect((await json(read(t, `/advertiser/info/?advertiser_ids=${A}`, token))).code).toBe(40000)
    expect((await json(read(t, '/advertiser/info/', token))).code).toBe(40000)
  })

  it('campaign/get/: a page of campaigns with page_info, their 19-digit ids exact', async () => {
    const t = tiktok()
    const token = await grant(t)
    const text = await (await read(t, `/campaign/get/?advertiser_id=${A}`, token)).text()
    const body = JSON.parse(text)
    expect(body.code).toBe(0)
    expect(body.data.page_info).toEqual({ page: 1, page_size: 10, total_number: 3, total_page: 1 })
    expect(body.data.list).toHaveLength(3)
    for (const campaign of body.data.list) {
      expect(campaign).toMatchObject({ advertiser_id: A, budget_mode: 'BUDGET_MODE_DAY', campaign_type: 'REGULAR_CAMPAIGN' })
      expect(campaign.campaign_id).toMatch(/^\d{19}$/)
      expect(BigInt(campaign.campaign_id) > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true)
      expect(text).toContain(`"campaign_id":"${campaign.campaign_id}"`)
      expect(campaign.create_time).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/)
    }
    const ofB = await json(read(t, `/campaign/get/?advertiser_id=${B}`, token))
    expect(new Set([...body.data.list, ...ofB.data.list].map((c: any) => c.campaign_id)).size).toBe(6)
    const second = await json(read(t, `/campaign/get/?advertiser_id=${A}&page=2&page_size=2`, token))
    expect(second.data.page_info).toEqual({ page: 2, page_size: 2, total_number: 3, total_page: 2 })
    expect(second.data.list.map((c: any) => c.campaign_id)).toEqual([body.data.list[2].campaign_id])
    expect((await json(read(t, `/campaign/get/?advertiser_id=${A}&page_size=1001`, token))).code).toBe(40000)
    expect((await json(read(t, '/campaign/get/', token))).code).toBe(40000)
  })

  it('report/integrated/get/: rows of dimensions and metrics (strings), one per campaign and day, the same every time', async () => {
    const t = tiktok()
    const token = await grant(t)
    const campaigns = (await json(read(t, `/campaign/get/?advertiser_id=${A}`, token))).data.list.map((c: any) => c.campaign_id)
    const report = (extra: string) =>
      read(t, `/report/integrated/get/?advertiser_id=${A}&report_type=BASIC&start_date=2026-11-01&end_date=2026-11-03${extra}`, token)
    const byDay = `&data_level=AUCTION_CAMPAIGN&dimensions=${q(['campaign_id', 'stat_time_day'])}&metrics=${q(['spend', 'impressions', 'clicks'])}&page_size=20`
    const text = await (await report(byDay)).text()
    const body = JSON.parse(text)
    expect(body.code).toBe(0)
    expect(body.data.page_info).toEqual({ page: 1, page_size: 20, total_number: 9, total_page: 1 })
    expect(body.data.list.map((row: any) => [row.dimensions.campaign_id, row.dimensions.stat_time_day])).toEqual(
      campaigns.flatMap((id: string) => ['2026-11-01', '2026-11-02', '2026-11-03'].map((day) => [id, `${day} 00:00:00`])),
    )
    for (const row of body.data.list) {
      expect(Object.keys(row.metrics)).toEqual(['spend', 'impressions', 'clicks'])
      expect(row.metrics.spend).toMatch(/^\d+\.\d{2}$/)
      expect(row.metrics.impressions).toMatch(/^\d+$/)
      expect(text).toContain(`"campaign_id":"${row.dimensions.campaign_id}"`)
    }
    expect(await (await report(byDay)).json().then((again: any) => again.data)).toEqual(body.data)

    const total = await json(report(`&dimensions=${q(['advertiser_id'])}`))
    expect(total.data.list).toEqual([{ dimensions: { advertiser_id: A }, metrics: { spend: expect.any(String), impressions: expect.any(String) } }])
    expect(total.data.page_info).toEqual({ page: 1, page_size: 10, total_number: 1, total_page: 1 })

    expect((await json(report(`&dimensions=${q(['campaign_id'])}`))).code).toBe(40000)
    expect((await json(report(`&dimensions=${q(['advertiser_id'])}&metrics=${q(['revenue'])}`))).code).toBe(40000)
    expect((await json(report(''))).code).toBe(40000)
    const longRange = `/report/integrated/get/?advertiser_id=${A}&report_type=BASIC&start_date=2026-10-01&end_date=2026-11-03&dimensions=${q(['stat_time_day'])}`
    expect((await json(read(t, longRange, token))).code).toBe(40000)
    expect((await json(read(t, longRange.replace('BASIC', 'AUDIENCE'), token))).code).toBe(40000)
  })

  it.each([
    ['advertiser/info/', (id: string) => `/advertiser/info/?advertiser_ids=${q([A, id])}`],
    ['campaign/get/', (id: string) => `/campaign/get/?advertiser_id=${id}`],
    [
      'report/integrated/get/',
      (id: string) =>
        `/report/integrated/get/?advertiser_id=${id}&report_type=BASIC&dimensions=${q(['advertiser_id'])}&start_date=2026-11-01&end_date=2026-11-01`,
    ],
  ])('%s needs a live Access-Token (40104, 40105) that reaches the advertiser (40001)', async (path, url) => {
    const t = tiktok()
    const token = await grant(t, [A, B])
    expect((await json(read(t, url(B), token))).code).toBe(0)
    expect((await json(read(t, url(B)))).code).toBe(40104)
    expect((await json(read(t, url(B), 'not-a-token'))).code).toBe(40105)
    const foreign = await json(read(t, url(OUTSIDE), token))
    expect(foreign).toMatchObject({ code: 40001, message: `advertiser does not grant you /${path}:GET permission`, data: {} })
    // An advertiser the user took out of the grant, or whose account closed, is foreign too.
    t.removeAdvertiser(token, B)
    expect((await json(read(t, url(B), token))).code).toBe(40001)
    const other = await grant(t, [A, B])
    t.setAdvertisers([{ id: A, name: 'Brand A' }])
    expect((await json(read(t, url(B), other))).code).toBe(40001)
    t.revokeGrant(other)
    expect((await json(read(t, url(A), other))).code).toBe(40105)
    // GET only, with the trailing slash.
    expect((await t.app.request(`${API}/${path}`, { method: 'POST', headers: { 'Access-Token': token } })).status).toBe(405)
    expect((await t.app.request(`${API}/${path.slice(0, -1)}`, { headers: { 'Access-Token': token } })).status).toBe(404)
  })
})
