import { Hono } from 'hono'
import { type Fault, faultResponse, Faults } from './faults.ts'
import { authorizePage } from './pages.ts'

export type SandboxAdvertiser = { id: string; name: string }

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
}

type Code = { advertiserIds: string[]; expiresAt: number; used: boolean; token?: string }
type Token = { grant: string; advertiserIds: string[]; revoked: boolean; issuedAt: number }

/** A live grant. `grant` is its name on the control page, which never shows the token itself. */
export type Grant = { grant: string; token: string; advertiserIds: string[]; issuedAt: string }

export type RecordedRequest = {
  method: string
  path: string
  query: Record<string, string>
  headers: Record<string, string>
  body: string
}

const API = '/open_api/v1.3'
// Scope ids beyond 2^53, sent bare as TikTok does: any JSON.parse that rounds them is caught.
const SCOPE = '[4, 200, 7543056879933489153]'

const random = (bytes: number) =>
  [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, '0')).join('')

const requestId = () => `2026${Date.now()}${random(6)}`

/** TikTok's envelope: HTTP 200 whatever happened, `code` 0 only on success. `data` is raw JSON text. */
const envelope = (code: number, message: string, data = '{}') =>
  new Response(`{"code": ${code}, "message": ${JSON.stringify(message)}, "request_id": "${requestId()}", "data": ${data}}`, {
    headers: { 'content-type': 'application/json' },
  })

/**
 * A stand-in for the parts of TikTok API for Business v1.3 that the Worker uses, following
 * shared/tiktok-business-oauth.md: the portal authorize page, the code exchange, the advertiser list
 * and token revocation.
 */
export function createTikTok(options: TikTokOptions) {
  const codes = new Map<string, Code>()
  const tokens = new Map<string, Token>()
  const faults = new Faults()
  const requests: RecordedRequest[] = []
  const ttl = options.codeTtlMs ?? 3_600_000
  // What exists at TikTok now: the authorize page offers these, and a grant reaches only those still here.
  let advertisers = options.advertisers

  const idJson = (id: string) => (options.bareIds ? id : JSON.stringify(id))

  /** What the portal does when the user presses Authorize: a fresh single-use code. */
  const issueCode = (advertiserIds = advertisers.map((a) => a.id)): string => {
    const code = random(20)
    codes.set(code, { advertiserIds, expiresAt: Date.now() + ttl, used: false })
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

  const withFault = async (target: 'token' | 'advertisers' | 'revoke', header: string | undefined) => {
    const fault: Fault = faults.take(target, header)
    await faults.delay(fault)
    return faultResponse(fault) ?? (fault.tiktokCode ? envelope(fault.tiktokCode, 'sandbox fault') : undefined)
  }

  const app = new Hono()

  app.use(async (c, next) => {
    if (options.record !== false && c.req.path.startsWith(API)) {
      const url = new URL(c.req.url)
      requests.push({
        method: c.req.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: Object.fromEntries(c.req.raw.headers),
        body: c.req.method === 'GET' ? '' : await c.req.raw.clone().text(),
      })
    }
    await next()
  })

  app.get('/portal/auth', (c) => {
    const appId = c.req.query('app_id')
    const redirectUri = c.req.query('redirect_uri') ?? ''
    const state = c.req.query('state') ?? ''
    if (appId !== options.appId) return c.html(authorizePage({ error: 'Unknown app_id.' }), 400)
    if (!options.redirectUris.includes(redirectUri))
      return c.html(authorizePage({ error: `redirect_uri is not registered for this app: ${redirectUri}` }), 400)
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

  app.post(`${API}/oauth2/access_token/`, async (c) => {
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
    if (!code || code.expiresAt <= Date.now()) return envelope(40110, 'Auth code is invalid or expired')
    if (code.used) return envelope(40115, 'Auth code has been used')
    code.used = true
    const token = random(20)
    tokens.set(token, { grant: random(6), advertiserIds: [...code.advertiserIds], revoked: false, issuedAt: Date.now() })
    code.token = token
    return envelope(
      0,
      'OK',
      `{"access_token": "${token}", "advertiser_ids": [${code.advertiserIds.map(idJson).join(', ')}], "scope": ${SCOPE}}`,
    )
  })

  app.get(`${API}/oauth2/advertiser/get/`, async (c) => {
    const faulted = await withFault('advertisers', c.req.header('x-sandbox-fault'))
    if (faulted) return faulted
    const accessToken = c.req.header('access-token')
    if (!accessToken) return envelope(40104, 'Access token is null')
    if (c.req.query('app_id') !== options.appId || c.req.query('secret') !== options.appSecret)
      return envelope(40101, 'app_id or secret is invalid')
    const token = tokens.get(accessToken)
    if (!token || token.revoked) return envelope(40105, 'Access token is incorrect or has been revoked')
    const list = advertisers
      .filter((a) => token.advertiserIds.includes(a.id))
      .map((a) => `{"advertiser_id": ${idJson(a.id)}, "advertiser_name": ${JSON.stringify(a.name)}}`)
    return envelope(0, 'OK', `{"list": [${list.join(', ')}]}`)
  })

  app.post(`${API}/oauth2/revoke_token/`, async (c) => {
    const faulted = await withFault('revoke', c.req.header('x-sandbox-fault'))
    if (faulted) return faulted
    const body = (await c.req.json().catch(() => ({}))) as Record<string, unknown>
    if (body.app_id !== options.appId || body.secret !== options.appSecret) return envelope(40101, 'app_id or secret is invalid')
    if (typeof body.access_token !== 'string' || !revokeGrant(body.access_token)) return envelope(40105, 'Access token is incorrect or has been revoked')
    return envelope(0, 'OK')
  })

  // The real API answers a wrong method with a bare 405 and an unknown path with a bare 404.
  app.all(`${API}/oauth2/*`, (c) => c.text(c.req.path.endsWith('/') ? 'Method Not Allowed' : 'Not Found', c.req.path.endsWith('/') ? 405 : 404))

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
    reset() {
      codes.clear()
      tokens.clear()
      faults.clear()
      requests.length = 0
      advertisers = options.advertisers
    },
  }
}
