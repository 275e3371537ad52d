import { Hono } from 'hono'
import { FAULT_TARGETS, type Fault, type FaultTarget } from './faults.ts'
import type { SandboxDatabase } from './database.ts'
import { createSupabase } from './supabase.ts'
import { createTikTok, type SandboxAdvertiser } from './tiktok.ts'

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
  /** Keep every request for inspection (default true). */
  record?: boolean
}

/** Strips the mount prefix so each stand-in sees the paths its real counterpart serves. */
const mount = (app: Hono, prefix: string, target: { fetch: (request: Request) => Response | Promise<Response> }) =>
  app.all(`${prefix}/*`, (c) => {
    const url = new URL(c.req.url)
    url.pathname = url.pathname.slice(prefix.length)
    return target.fetch(new Request(url, c.req.raw))
  })

/**
 * TikTok under `/tiktok`, Supabase under `/supabase`, and `/__sandbox/*` to script faults and read
 * what happened. One origin, so one process serves the whole offline world.
 */
export async function createSandbox(config: SandboxConfig) {
  const tiktok = createTikTok({
    appId: config.appId,
    appSecret: config.appSecret,
    redirectUris: config.workerOrigins.map((origin) => `${origin}/oauth/callback`),
    advertisers: config.advertisers ?? DEMO_ADVERTISERS,
    record: config.record,
  })
  const supabase = await createSupabase({
    url: `${config.origin}/supabase`,
    secretKey: config.supabaseSecretKey,
    database: config.database,
    accounts: [{ id: DEMO_USER.id, email: DEMO_USER.email }],
    users: [DEMO_USER],
    record: config.record,
  })

  const app = new Hono()
  mount(app, '/tiktok', tiktok.app)
  mount(app, '/supabase', supabase.app)

  app.post('/__sandbox/faults', async (c) => {
    const body = (await c.req.json().catch(() => ({}))) as { target?: FaultTarget; fault?: Fault; times?: number; defaultLatencyMs?: number }
    if (typeof body.defaultLatencyMs === 'number') {
      tiktok.faults.defaultLatencyMs = body.defaultLatencyMs
      supabase.faults.defaultLatencyMs = body.defaultLatencyMs
    }
    if (body.target) {
      if (!FAULT_TARGETS.includes(body.target)) return c.json({ error: `target must be one of ${FAULT_TARGETS.join(', ')}` }, 400)
      const faults = ['rest', 'rpc', 'jwks'].includes(body.target) ? supabase.faults : tiktok.faults
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
    await supabase.reset()
    return c.json({ ok: true })
  })

  /** What reached the stand-ins: method and path only, so nothing secret is echoed. */
  app.get('/__sandbox/requests', (c) =>
    c.json({
      tiktok: tiktok.requests.map((r) => ({ method: r.method, path: r.path })),
      supabase: supabase.requests.map((r) => ({ method: r.method, path: r.path })),
    }),
  )

  app.get('/', (c) =>
    c.html(`<!doctype html><meta charset="utf-8"><title>Sandbox</title>
<h1>tiktok-connect-edge sandbox</h1>
<ul>
<li><a href="/supabase/">Supabase: what <code>user_accounts</code> holds</a></li>
<li>TikTok API for Business: <code>${config.origin}/tiktok/open_api/v1.3</code></li>
<li>Supabase: <code>${config.origin}/supabase</code> (demo user ${DEMO_USER.email} / ${DEMO_USER.password})</li>
</ul>`),
  )

  return { app, tiktok, supabase }
}
