import { Hono } from 'hono'
import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { FAULT_TARGETS, type Fault, type FaultTarget } from './faults.ts'
import type { SandboxDatabase } from './database.ts'
import { FAVICON_ICO } from './favicon.ts'
import { mask, SANDBOX_CSS, sandboxPage } from './pages.ts'
import { createSupabase } from './supabase.ts'
import { createTikTok } from './tiktok.ts'
import type { SandboxAdvertiser, Tier } from './types.ts'
import { createReceiver } from './webhooks.ts'

export const DEMO_USER = { id: '3f1c9a52-7d4e-4b8a-9e21-5c6d7a8b9c01', email: 'demo@example.com', password: 'demo-password' }
export const DEMO_ADVERTISERS: SandboxAdvertiser[] = [
  { id: '7412345678901234567', name: 'Demo Advertiser (US)' },
  { id: '7412345678901234599', name: 'Demo Advertiser (EU)' },
]

export type SandboxConfig = {
  /** Where the sandbox itself is reached, e.g. `http://127.0.0.1:8790`. */
  origin: string
  /** The Worker's origins: their `/oauth/callback` are the app's registered redirect URLs. */
  workerOrigins: string[]
  appId: string
  appSecret: string
  supabaseSecretKey: string
  advertisers?: SandboxAdvertiser[]
  /** The PostgreSQL behind the Supabase stand-in (sandbox/pglite.ts in Node). */
  database: SandboxDatabase
  /** The Worker's `WEBHOOK_SECRET` (`whsec_<base64>`): the receiver at `/webhooks` verifies with it. */
  webhookSecret?: string
  /** Keep every request for inspection (default true). */
  record?: boolean
  /** The app's TikTok tier, enforced by the TikTok stand-in; absent: not enforced. */
  tiktokTier?: Tier
}

/** Strips the mount prefix so each stand-in sees the paths its real counterpart serves. */
const mount = (app: Hono, prefix: string, target: { fetch: (request: Request) => Response | Promise<Response> }) =>
  app.all(`${prefix}/*`, (c) => {
    const url = new URL(c.req.url)
    url.pathname = url.pathname.slice(prefix.length)
    return target.fetch(new Request(url, c.req.raw))
  })

/**
 * Every control (`POST /__sandbox/*`) is for whoever is looking at the sandbox or scripting it, never
 * for another site's page: a simple cross-site POST (a form, or fetch without preflight) could
 * otherwise script faults, reset the database or revoke grants while someone runs `npm run dev`.
 * Scripts send neither header; a browser sends at least one of them.
 */
const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/i
const sameSiteControls = createMiddleware(async (c, next) => {
  if (c.req.method !== 'POST') return next()
  const origin = c.req.header('origin')
  const host = c.req.header('host') ?? new URL(c.req.url).host
  // The sandbox serves plain http only. A Host of another name is a page that rebound its own name to
  // this machine: the Origin check alone would pass it.
  if (!LOOPBACK_HOST.test(host)) return c.json({ error: 'the sandbox answers its controls on 127.0.0.1, localhost or [::1] only' }, 403)
  if (c.req.header('sec-fetch-site') === 'cross-site' || (origin && origin !== `http://${host}`)) return c.json({ error: 'cross-site request refused' }, 403)
  await next()
})

/** A control the browser submits comes back to the page it was on; a script gets JSON. */
async function controlInput(c: Context): Promise<{ form: boolean; input: Record<string, unknown> }> {
  const form = (c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')
  const input = form ? ((await c.req.parseBody()) as Record<string, unknown>) : ((await c.req.json().catch(() => ({}))) as Record<string, unknown>)
  return { form, input: input && typeof input === 'object' ? input : {} }
}

/**
 * TikTok under `/tiktok`, Supabase under `/supabase`, the product's webhook receiver at `/webhooks`,
 * and `/__sandbox/*` to script faults, act as an advertiser at TikTok, and read what happened. One
 * origin, so one process serves the whole offline world.
 */
export async function createSandbox(config: SandboxConfig) {
  const tiktok = createTikTok({
    appId: config.appId,
    appSecret: config.appSecret,
    redirectUris: config.workerOrigins.map((origin) => `${origin}/oauth/callback`),
    advertisers: config.advertisers ?? DEMO_ADVERTISERS,
    record: config.record,
    tier: config.tiktokTier,
  })
  const supabase = await createSupabase({
    url: `${config.origin}/supabase`,
    secretKey: config.supabaseSecretKey,
    database: config.database,
    users: [{ id: DEMO_USER.id, email: DEMO_USER.email }],
    passwords: { [DEMO_USER.email]: DEMO_USER.password },
    record: config.record,
  })
  const receiver = createReceiver({ secret: config.webhookSecret, record: config.record })

  const app = new Hono()
  mount(app, '/tiktok', tiktok.app)
  mount(app, '/supabase', supabase.app)
  // At the root, not under /supabase: the receiver plays the product's own server, which is
  // neither of the two services the sandbox stands in for.
  app.route('/', receiver.app)

  app.use('/__sandbox/*', sameSiteControls)
  app.post('/__sandbox/faults', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { target?: FaultTarget; fault?: Fault; times?: number; defaultLatencyMs?: number }
    if (typeof body.defaultLatencyMs === 'number') {
      tiktok.faults.defaultLatencyMs = body.defaultLatencyMs
      supabase.faults.defaultLatencyMs = body.defaultLatencyMs
    }
    if (body.target) {
      if (!FAULT_TARGETS.includes(body.target)) return c.json({ error: `target must be one of ${FAULT_TARGETS.join(', ')}` }, 400)
      const faults = body.target === 'webhook' ? receiver.faults : ['rest', 'rpc', 'schema', 'jwks'].includes(body.target) ? supabase.faults : tiktok.faults
      faults.add(body.target, body.fault ?? {}, body.times ?? 1)
    }
    return c.json({ ok: true })
  })

  /** Single-use codes as if users had pressed Authorize, in bulk, for load tests. */
  app.post('/__sandbox/codes', async (c) => {
    const { count = 1 } = (await c.req.json().catch(() => ({}))) as { count?: number }
    return c.json({ codes: Array.from({ length: Math.min(count, 100_000) }, () => tiktok.issueCode()) })
  })

  app.post('/__sandbox/reset', async (c) => {
    tiktok.reset()
    receiver.reset()
    await supabase.reset()
    return c.json({ ok: true })
  })

  /** The grants `input` names: `grant` (the page's name for one), `token`, or every live grant reaching `advertiser_id`. */
  const grantsNamed = (input: Record<string, unknown>): string[] => {
    if (typeof input.grant === 'string') return [tiktok.tokenOf(input.grant)].filter((t) => t !== undefined)
    if (typeof input.token === 'string') return tiktok.tokenIsLive(input.token) ? [input.token] : []
    if (typeof input.advertiser_id === 'string')
      return tiktok
        .grants()
        .filter((g) => g.advertiserIds.includes(input.advertiser_id as string))
        .map((g) => g.token)
    return []
  }

  /** The advertiser removes the app at TikTok: the grant's token answers 40105 from now on. */
  app.post('/__sandbox/tiktok/revoke', async (c) => {
    const { form, input } = await controlInput(c)
    if (!['grant', 'token', 'advertiser_id'].some((k) => typeof input[k] === 'string'))
      return c.json({ error: 'name a grant, a token or an advertiser_id' }, 400)
    const revoked = grantsNamed(input).filter((token) => tiktok.revokeGrant(token)).length
    return form ? c.redirect('/', 303) : c.json({ revoked })
  })

  /** The advertiser takes one advertiser account out of a grant (or of every grant reaching it). */
  app.post('/__sandbox/tiktok/remove-advertiser', async (c) => {
    const { form, input } = await controlInput(c)
    if (typeof input.advertiser_id !== 'string') return c.json({ error: 'advertiser_id is required' }, 400)
    const changed = grantsNamed(input).filter((token) => tiktok.removeAdvertiser(token, input.advertiser_id as string)).length
    return form ? c.redirect('/', 303) : c.json({ changed })
  })

  /** Live grants, token masked. */
  app.get('/__sandbox/tiktok/grants', (c) =>
    c.json({ grants: tiktok.grants().map((g) => ({ grant: g.grant, token: mask(g.token), advertiser_ids: g.advertiserIds, issued_at: g.issuedAt })) }),
  )

  /** TikTok's tier as the stand-in enforces it, and the calls it refused by the window that was full. */
  app.get('/__sandbox/tiktok/quota', (c) => c.json(tiktok.tierState()))

  /** What reached the stand-ins: method and path only, so nothing secret is echoed. */
  app.get('/__sandbox/requests', (c) =>
    c.json({
      tiktok: tiktok.requests.map((r) => ({ method: r.method, path: r.path })),
      supabase: supabase.requests.map((r) => ({ method: r.method, path: r.path })),
    }),
  )

  // Shared by every sandbox page, whichever stand-in serves it.
  app.get('/sandbox.css', (c) => c.body(SANDBOX_CSS, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'no-cache' }))
  app.get('/favicon.ico', (c) => c.body(FAVICON_ICO, 200, { 'content-type': 'image/x-icon', 'cache-control': 'max-age=86400' }))

  app.get('/', (c) => {
    const names = new Map(tiktok.advertisers().map((a) => [a.id, a.name]))
    return c.html(
      sandboxPage({
        origin: config.origin,
        workerOrigins: config.workerOrigins,
        demoUser: DEMO_USER,
        grants: tiktok.grants().map((g) => ({
          grant: g.grant,
          maskedToken: mask(g.token),
          advertisers: g.advertiserIds.map((id) => ({ id, name: names.get(id) })),
          issuedAt: g.issuedAt,
        })),
        quota: tiktok.tierState(),
      }),
    )
  })

  return { app, tiktok, supabase, receiver }
}
