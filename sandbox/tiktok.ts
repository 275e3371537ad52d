import { type RecordedRequest, recorded, type SandboxAdvertiser, type Tier, type TierState } from './types.ts'
import { Hono } from 'hono'
import { createMiddleware } from 'hono/factory'
import { type Fault, faultResponse, Faults } from './faults.ts'
import { authorizePage } from './pages.ts'

export type TikTokOptions = {
  appId: string
  appSecret: string
  /** The app's registered "Advertiser redirect URLs"; matched exactly. */
  redirectUris: string[]
  advertisers: SandboxAdvertiser[]
  /** How long an auth code lives (TikTok: about an hour). */
  codeTtlMs?: number
  /** Send `advertiser_id`s as bare JSON numbers, as some integrations report seeing. */
  bareIds?: boolean
  /** Keep every API request for inspection (default); the benchmark turns it off. */
  record?: boolean
  /**
   * The app's tier, enforced as TikTok appears to: fixed windows aligned to the second and to the
   * minute, `code: 40100` beyond. Absent: not enforced (the workerd tests and the benchmark call it
   * far faster than any tier).
   */
  tier?: Tier
  /** The stand-in's clock (default `Date.now`): the tier's windows, code expiry, grant times. */
  now?: () => number
}

type Code = { advertiserIds: string[]; expiresAt: number; used: boolean; token?: string }
type Token = { grant: string; advertiserIds: string[]; revoked: boolean; issuedAt: number }

/** A live grant. `grant` is its name on the control page, which never shows the token itself. */
export type Grant = { grant: string; token: string; advertiserIds: string[]; issuedAt: string }

const API = '/open_api/v1.3'
const SECOND_MS = 1000
const MINUTE_MS = 60_000
// How many campaigns each advertiser account has at the stand-in, and the days its reports cover.
const CAMPAIGNS_PER_ADVERTISER = 3
const MAX_REPORT_DAYS = 30
const REPORT_METRICS = ['spend', 'impressions', 'clicks', 'ctr', 'cpc', 'cpm', 'conversion'] as const
const REPORT_DIMENSIONS = ['advertiser_id', 'campaign_id', 'stat_time_day'] as const
// Scope ids beyond 2^53, sent bare as TikTok does: any JSON.parse that rounds them is caught.
const SCOPE = '[4, 200, 7543056879933489153]'

const random = (bytes: number) => [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, '0')).join('')

const requestId = () => `2026${Date.now()}${random(6)}`

/** TikTok's envelope: HTTP 200 whatever happened, `code` 0 only on success. `data` is raw JSON text. */
const envelope = (code: number, message: string, data = '{}') =>
  new Response(`{"code": ${code}, "message": ${JSON.stringify(message)}, "request_id": "${requestId()}", "data": ${data}}`, {
    headers: { 'content-type': 'application/json' },
  })

/** A JSON array of strings in a query parameter, as TikTok takes `advertiser_ids`, `dimensions`, `metrics`. */
const jsonList = (raw: string | undefined): string[] | undefined => {
  if (raw === undefined) return undefined
  try {
    const value: unknown = JSON.parse(raw)
    return Array.isArray(value) && value.every((v) => typeof v === 'string') ? value : undefined
  } catch {
    return undefined
  }
}

/** A whole number from a query parameter within [1, max], the fallback when absent, undefined when malformed. */
const pageNumber = (raw: string | undefined, fallback: number, max: number): number | undefined => {
  if (raw === undefined) return fallback
  const value = Number(raw)
  return /^\d+$/.test(raw) && value >= 1 && value <= max ? value : undefined
}

/** `page` (default 1) and `page_size` (default 10, at most 1000), as TikTok's list endpoints take them. */
const paging = (query: (name: string) => string | undefined): { page: number; pageSize: number } | undefined => {
  const page = pageNumber(query('page'), 1, 100_000)
  const pageSize = pageNumber(query('page_size'), 10, 1000)
  return page && pageSize ? { page, pageSize } : undefined
}
const BAD_PAGING = 'page and page_size must be whole numbers, page_size at most 1000.'

/** FNV-1a: the same made-up figures for the same campaign and day, every run. */
const hash = (text: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10)
const tikTokTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')

/** One page of `rows` with TikTok's `page_info`. */
const paged = <T>(rows: T[], { page, pageSize }: { page: number; pageSize: number }) => ({
  list: rows.slice((page - 1) * pageSize, page * pageSize),
  page_info: { page, page_size: pageSize, total_number: rows.length, total_page: Math.ceil(rows.length / pageSize) },
})

/**
 * A stand-in for the parts of TikTok API for Business v1.3 that the Worker uses, following
 * shared/tiktok-business-oauth.md: the portal authorize page, the code exchange, the advertiser list
 * and token revocation; and three read endpoints a product's backends call with a connection's
 * token (advertiser info, campaigns, the synchronous report).
 */
export function createTikTok(options: TikTokOptions) {
  const codes = new Map<string, Code>()
  const tokens = new Map<string, Token>()
  const faults = new Faults()
  const requests: RecordedRequest[] = []
  const ttl = options.codeTtlMs ?? 3_600_000
  // Read at each call, so a clock faked after creation is seen too.
  const now = options.now ?? (() => Date.now())
  const tier = options.tier ?? null
  const windows = { second: { index: -1, count: 0 }, minute: { index: -1, count: 0 } }
  const refused = { second: 0, minute: 0 }
  // What exists at TikTok now: the authorize page offers these, and a grant reaches only those still here.
  let advertisers = options.advertisers

  const idJson = (id: string) => (options.bareIds ? id : JSON.stringify(id))

  /** What the portal does when the user presses Authorize: a fresh single-use code. */
  const issueCode = (advertiserIds = advertisers.map((a) => a.id)): string => {
    const code = random(20)
    codes.set(code, { advertiserIds, expiresAt: now() + ttl, used: false })
    return code
  }

  /**
   * Ends a grant, whether the app revokes its token or the advertiser removes the app at TikTok:
   * every later call with the token answers 40105. False when the token is unknown or already dead.
   */
  const revokeGrant = (accessToken: string): boolean => {
    const token = tokens.get(accessToken)
    if (!token || token.revoked) return false
    token.revoked = true
    return true
  }

  const withFault = async (target: 'token' | 'advertisers' | 'revoke' | 'read', header: string | undefined) => {
    const fault: Fault = faults.take(target, header)
    await faults.delay(fault)
    return faultResponse(fault) ?? (fault.tiktokCode ? envelope(fault.tiktokCode, 'sandbox fault') : undefined)
  }

  /**
   * TikTok's tier as it appears from outside: every API call counts on arrival in the current second
   * and the current minute, both aligned to the clock; one over either limit answers 40100 (TikTok's
   * codes do not say which limit) and is not counted.
   */
  const tierGate = createMiddleware(async (_c, next) => {
    if (tier) {
      const at = now()
      for (const [name, length] of [
        ['second', SECOND_MS],
        ['minute', MINUTE_MS],
      ] as const) {
        const index = Math.floor(at / length)
        if (windows[name].index !== index) windows[name] = { index, count: 0 }
      }
      const full = windows.second.count >= tier.qps ? 'second' : windows.minute.count >= tier.qpm ? 'minute' : undefined
      if (full) {
        refused[full]++
        return envelope(40100, `Due to too many requests, requests from App ${options.appId} are temporarily restricted.`)
      }
      windows.second.count++
      windows.minute.count++
    }
    await next()
  })

  /** The live grant whose token the call carries, or TikTok's answer to a missing or dead one. */
  const grantOf = (accessToken: string | undefined): Token | Response => {
    if (!accessToken) return envelope(40104, 'Access token is null')
    const token = tokens.get(accessToken)
    if (!token || token.revoked) return envelope(40105, 'Access token is incorrect or has been revoked')
    return token
  }

  /** TikTok's answer when the grant does not reach one of `advertiserIds` (or it no longer exists). */
  const notGranted = (token: Token, advertiserIds: string[], path: string): Response | undefined => {
    const foreign = advertiserIds.find((id) => !token.advertiserIds.includes(id) || !advertisers.some((a) => a.id === id))
    return foreign === undefined ? undefined : envelope(40001, `advertiser does not grant you ${path}:GET permission`)
  }

  /** The advertiser's campaigns at the stand-in: 19-digit ids made from the advertiser's. */
  const campaignsOf = (advertiser: SandboxAdvertiser) =>
    Array.from({ length: CAMPAIGNS_PER_ADVERTISER }, (_, i) => ({
      advertiser_id: advertiser.id,
      campaign_id: `17${advertiser.id.slice(-15).padStart(15, '0')}${String(i + 1).padStart(2, '0')}`,
      campaign_name: `${advertiser.name} campaign ${i + 1}`,
      campaign_type: 'REGULAR_CAMPAIGN',
      objective_type: ['TRAFFIC', 'WEB_CONVERSIONS', 'REACH'][i % 3],
      budget: 50 * (i + 1),
      budget_mode: 'BUDGET_MODE_DAY',
      operation_status: i === CAMPAIGNS_PER_ADVERTISER - 1 ? 'DISABLE' : 'ENABLE',
      secondary_status: i === CAMPAIGNS_PER_ADVERTISER - 1 ? 'CAMPAIGN_STATUS_DISABLE' : 'CAMPAIGN_STATUS_ENABLE',
      is_smart_performance_campaign: false,
      create_time: tikTokTime(Date.UTC(2026, 0, 5 + i, 8)),
      modify_time: tikTokTime(Date.UTC(2026, 5, 1 + i, 9)),
    }))

  const app = new Hono()

  app.use(async (c, next) => {
    if (options.record !== false && c.req.path.startsWith(API)) {
      requests.push(await recorded(c.req.raw))
    }
    await next()
  })

  app.get('/portal/auth', (c) => {
    const appId = c.req.query('app_id')
    const redirectUri = c.req.query('redirect_uri') ?? ''
    const state = c.req.query('state') ?? ''
    if (appId !== options.appId) return c.html(authorizePage({ error: 'Unknown app_id.' }), 400)
    if (!options.redirectUris.includes(redirectUri)) return c.html(authorizePage({ error: `redirect_uri is not registered for this app: ${redirectUri}` }), 400)
    return c.html(authorizePage({ appId, redirectUri, state, advertisers }))
  })

  app.post('/portal/auth/decision', async (c) => {
    const form = await c.req.parseBody()
    const redirectUri = String(form.redirect_uri ?? '')
    if (String(form.app_id) !== options.appId || !options.redirectUris.includes(redirectUri))
      return c.html(authorizePage({ error: 'redirect_uri is not registered for this app.' }), 400)
    const target = new URL(redirectUri)
    if (form.decision === 'authorize') {
      const code = issueCode()
      // TikTok sends the code twice, under both names, plus fields a client must ignore.
      target.searchParams.set('auth_code', code)
      target.searchParams.set('code', code)
      target.searchParams.set('app_id', options.appId)
      target.searchParams.set('scope', '4,200')
    }
    target.searchParams.set('state', String(form.state ?? ''))
    return c.redirect(target.toString(), 302)
  })

  app.post(`${API}/oauth2/access_token/`, tierGate, async (c) => {
    const faulted = await withFault('token', c.req.header('x-sandbox-fault'))
    if (faulted) return faulted
    let body: Record<string, unknown>
    try {
      body = await c.req.json()
    } catch {
      return envelope(40000, 'The request body is not valid JSON')
    }
    if (typeof body.auth_code !== 'string' || !body.auth_code) return envelope(40000, 'auth_code: Missing data for required field.')
    if (body.app_id !== options.appId || body.secret !== options.appSecret) return envelope(40101, 'app_id or secret is invalid')
    const code = codes.get(body.auth_code)
    if (!code || code.expiresAt <= now()) return envelope(40110, 'Auth code is invalid or expired')
    if (code.used) return envelope(40115, 'Auth code has been used')
    code.used = true
    const token = random(20)
    tokens.set(token, { grant: random(6), advertiserIds: [...code.advertiserIds], revoked: false, issuedAt: now() })
    code.token = token
    return envelope(0, 'OK', `{"access_token": "${token}", "advertiser_ids": [${code.advertiserIds.map(idJson).join(', ')}], "scope": ${SCOPE}}`)
  })

  app.get(`${API}/oauth2/advertiser/get/`, tierGate, async (c) => {
    const faulted = await withFault('advertisers', c.req.header('x-sandbox-fault'))
    if (faulted) return faulted
    const accessToken = c.req.header('access-token')
    if (!accessToken) return envelope(40104, 'Access token is null')
    if (c.req.query('app_id') !== options.appId || c.req.query('secret') !== options.appSecret) return envelope(40101, 'app_id or secret is invalid')
    const token = tokens.get(accessToken)
    if (!token || token.revoked) return envelope(40105, 'Access token is incorrect or has been revoked')
    const list = advertisers
      .filter((a) => token.advertiserIds.includes(a.id))
      .map((a) => `{"advertiser_id": ${idJson(a.id)}, "advertiser_name": ${JSON.stringify(a.name)}}`)
    return envelope(0, 'OK', `{"list": [${list.join(', ')}]}`)
  })

  app.post(`${API}/oauth2/revoke_token/`, tierGate, async (c) => {
    const faulted = await withFault('revoke', c.req.header('x-sandbox-fault'))
    if (faulted) return faulted
    const body = (await c.req.json().catch(() => ({}))) as Record<string, unknown>
    if (body.app_id !== options.appId || body.secret !== options.appSecret) return envelope(40101, 'app_id or secret is invalid')
    if (typeof body.access_token !== 'string' || !revokeGrant(body.access_token)) return envelope(40105, 'Access token is incorrect or has been revoked')
    return envelope(0, 'OK')
  })

  app.get(`${API}/advertiser/info/`, tierGate, async (c) => {
    const faulted = await withFault('read', c.req.header('x-sandbox-fault'))
    if (faulted) return faulted
    const grant = grantOf(c.req.header('access-token'))
    if (grant instanceof Response) return grant
    const ids = jsonList(c.req.query('advertiser_ids'))
    if (!ids || ids.length === 0 || ids.length > 100) return envelope(40000, 'advertiser_ids: Must be a JSON list of 1 to 100 advertiser ids.')
    const fields = jsonList(c.req.query('fields'))
    if (c.req.query('fields') !== undefined && !fields) return envelope(40000, 'fields: Not a valid list.')
    const refusal = notGranted(grant, ids, '/advertiser/info/')
    if (refusal) return refusal
    const list = ids.map((id) => {
      const advertiser = advertisers.find((a) => a.id === id)!
      const info: Record<string, unknown> = {
        advertiser_id: id,
        name: advertiser.name,
        company: `${advertiser.name} Ltd`,
        status: 'STATUS_ENABLE',
        role: 'ROLE_ADVERTISER',
        currency: 'USD',
        timezone: 'Etc/GMT',
        display_timezone: 'Europe/London',
        country: 'GB',
        language: 'en',
        industry: '290303',
        balance: (hash(id) % 1_000_000) / 100,
        create_time: 1_700_000_000 + (hash(id) % 10_000_000),
      }
      // TikTok returns only the fields asked for.
      return fields ? Object.fromEntries(Object.entries(info).filter(([name]) => fields.includes(name))) : info
    })
    return envelope(0, 'OK', JSON.stringify({ list }))
  })

  app.get(`${API}/campaign/get/`, tierGate, async (c) => {
    const faulted = await withFault('read', c.req.header('x-sandbox-fault'))
    if (faulted) return faulted
    const grant = grantOf(c.req.header('access-token'))
    if (grant instanceof Response) return grant
    const advertiserId = c.req.query('advertiser_id')
    if (!advertiserId) return envelope(40000, 'advertiser_id: Missing data for required field.')
    const page = paging((name) => c.req.query(name))
    if (!page) return envelope(40000, BAD_PAGING)
    const refusal = notGranted(grant, [advertiserId], '/campaign/get/')
    if (refusal) return refusal
    return envelope(0, 'OK', JSON.stringify(paged(campaignsOf(advertisers.find((a) => a.id === advertiserId)!), page)))
  })

  app.get(`${API}/report/integrated/get/`, tierGate, async (c) => {
    const faulted = await withFault('read', c.req.header('x-sandbox-fault'))
    if (faulted) return faulted
    const grant = grantOf(c.req.header('access-token'))
    if (grant instanceof Response) return grant
    const query = (name: string) => c.req.query(name)
    if (query('report_type') !== 'BASIC') return envelope(40000, 'report_type: the sandbox answers BASIC reports only.')
    const advertiserId = query('advertiser_id')
    if (!advertiserId) return envelope(40000, 'advertiser_id: Missing data for required field.')
    const dataLevel = query('data_level') ?? 'AUCTION_ADVERTISER'
    if (dataLevel !== 'AUCTION_ADVERTISER' && dataLevel !== 'AUCTION_CAMPAIGN')
      return envelope(40000, 'data_level: the sandbox answers AUCTION_ADVERTISER and AUCTION_CAMPAIGN.')
    const dimensions = jsonList(query('dimensions'))
    if (!dimensions || dimensions.length === 0) return envelope(40000, 'dimensions: Missing data for required field.')
    const unknownDimension = dimensions.find((d) => !(REPORT_DIMENSIONS as readonly string[]).includes(d))
    if (unknownDimension) return envelope(40000, `dimensions: ${unknownDimension} is not a dimension the sandbox supports (${REPORT_DIMENSIONS.join(', ')}).`)
    if (dimensions.includes('campaign_id') && dataLevel !== 'AUCTION_CAMPAIGN')
      return envelope(40000, 'dimensions: campaign_id needs data_level AUCTION_CAMPAIGN.')
    const metrics = query('metrics') === undefined ? ['spend', 'impressions'] : jsonList(query('metrics'))
    const unknownMetric = metrics?.find((m) => !(REPORT_METRICS as readonly string[]).includes(m))
    if (!metrics || unknownMetric !== undefined)
      return envelope(40000, `metrics: ${unknownMetric ?? 'not a valid list'}; the sandbox supports ${REPORT_METRICS.join(', ')}.`)
    const start = Date.parse(`${query('start_date')}T00:00:00Z`)
    const end = Date.parse(`${query('end_date')}T00:00:00Z`)
    if (
      !/^\d{4}-\d{2}-\d{2}$/.test(query('start_date') ?? '') ||
      !/^\d{4}-\d{2}-\d{2}$/.test(query('end_date') ?? '') ||
      Number.isNaN(start) ||
      Number.isNaN(end) ||
      end < start
    )
      return envelope(40000, 'start_date and end_date: YYYY-MM-DD, the end not before the start.')
    const days = (end - start) / 86_400_000 + 1
    const maxDays = dimensions.includes('stat_time_day') ? MAX_REPORT_DAYS : 365
    if (days > maxDays) return envelope(40000, `The date range may be at most ${maxDays} days${maxDays === MAX_REPORT_DAYS ? ' with stat_time_day' : ''}.`)
    const page = paging(query)
    if (!page) return envelope(40000, BAD_PAGING)
    const refusal = notGranted(grant, [advertiserId], '/report/integrated/get/')
    if (refusal) return refusal

    const advertiser = advertisers.find((a) => a.id === advertiserId)!
    const groups = dimensions.includes('campaign_id') ? campaignsOf(advertiser).map((campaign) => campaign.campaign_id) : [advertiserId]
    const dayList = dimensions.includes('stat_time_day') ? Array.from({ length: days }, (_, i) => start + i * 86_400_000) : [undefined]
    const rows = groups.flatMap((group) =>
      dayList.map((day) => {
        const seed = hash(`${group}:${day ?? 'all'}`)
        const impressions = 1000 + (seed % 9000)
        const clicks = Math.floor(impressions * (0.005 + (seed % 50) / 2000))
        const spend = impressions * 0.004 + (seed % 100) / 100
        const figures: Record<(typeof REPORT_METRICS)[number], string> = {
          spend: spend.toFixed(2),
          impressions: String(impressions),
          clicks: String(clicks),
          ctr: ((clicks / impressions) * 100).toFixed(2),
          cpc: clicks ? (spend / clicks).toFixed(2) : '0.00',
          cpm: ((spend / impressions) * 1000).toFixed(2),
          conversion: String(Math.floor(clicks / 10)),
        }
        const dims: Record<string, string> = {}
        if (dimensions.includes('advertiser_id')) dims.advertiser_id = advertiserId
        if (dimensions.includes('campaign_id')) dims.campaign_id = group
        if (day !== undefined) dims.stat_time_day = `${isoDay(day)} 00:00:00`
        // Metric values are strings at TikTok, whatever their kind.
        return { dimensions: dims, metrics: Object.fromEntries(metrics.map((m) => [m, figures[m as keyof typeof figures]])) }
      }),
    )
    return envelope(0, 'OK', JSON.stringify(paged(rows, page)))
  })

  // The real API answers a wrong method with a bare 405 and an unknown path with a bare 404.
  app.all(`${API}/*`, (c) => c.text(c.req.path.endsWith('/') ? 'Method Not Allowed' : 'Not Found', c.req.path.endsWith('/') ? 405 : 404))

  return {
    app,
    faults,
    requests,
    issueCode,
    /** True when the stand-in issued this token and it is still live. */
    tokenIsLive: (token: string) => tokens.get(token)?.revoked === false,
    revokeGrant,
    /** The advertiser accounts that exist at TikTok now (see setAdvertisers). */
    advertisers: () => advertisers,
    /** The token of a live grant, by the name the control page shows; undefined once revoked. */
    tokenOf: (grant: string) => [...tokens].find(([, t]) => t.grant === grant && !t.revoked)?.[0],
    /** Live grants, oldest first. */
    grants: (): Grant[] =>
      [...tokens]
        .filter(([, t]) => !t.revoked)
        .map(([token, t]) => ({ grant: t.grant, token, advertiserIds: [...t.advertiserIds], issuedAt: new Date(t.issuedAt).toISOString() })),
    /**
     * The advertiser accounts that exist at TikTok. One dropped from the list is gone from every
     * grant's advertiser list, as when an advertiser account is closed.
     */
    setAdvertisers(list: SandboxAdvertiser[]) {
      advertisers = list
    },
    /**
     * The advertiser takes one account out of a grant (the app keeps the others): the list call
     * with that token stops naming it. False when the token is not live or did not reach it.
     */
    removeAdvertiser(accessToken: string, advertiserId: string): boolean {
      const token = tokens.get(accessToken)
      if (!token || token.revoked || !token.advertiserIds.includes(advertiserId)) return false
      token.advertiserIds = token.advertiserIds.filter((id) => id !== advertiserId)
      return true
    },
    /** The tier, and how many calls it refused, by the window that was full. */
    tierState(): TierState {
      const at = now()
      const current = (name: 'second' | 'minute', length: number) => (windows[name].index === Math.floor(at / length) ? windows[name].count : 0)
      return { tier, refused: { ...refused }, counted: { second: current('second', SECOND_MS), minute: current('minute', MINUTE_MS) } }
    },
    reset() {
      codes.clear()
      tokens.clear()
      faults.clear()
      requests.length = 0
      advertisers = options.advertisers
      windows.second = { index: -1, count: 0 }
      windows.minute = { index: -1, count: 0 }
      refused.second = 0
      refused.minute = 0
    },
  }
}
