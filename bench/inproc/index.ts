/**
 * Benchmark only: complete start → exchange flows inside one workerd isolate, with `fetch` answered
 * from canned upstream bodies. With no I/O and no other process sharing the CPU, the CPU this takes
 * is the Worker's own cost per flow, next to the floor's. `GET /?w=ours|floor&n=N` runs N flows.
 */
import { sign } from 'hono/jwt'
import { createSigningKey } from '../../sandbox/supabase'
import app from '../../src/index'
import floor from '../floor/index'

const ORIGIN = 'http://127.0.0.1:8970'
const SUPABASE = 'http://127.0.0.1:8990/supabase'
const USER = '3f1c9a52-7d4e-4b8a-9e21-5c6d7a8b9c01'
const vars: Record<string, string> = {
  TIKTOK_APP_ID: 'app',
  // Values of its own: the sandbox's committed secrets run only with ENVIRONMENT=development.
  TIKTOK_APP_SECRET: 'bench-not-a-real-tiktok-secret',
  TIKTOK_AUTH_URL: 'http://127.0.0.1:8990/tiktok/portal/auth',
  TIKTOK_API_BASE: 'http://127.0.0.1:8990/tiktok/open_api/v1.3',
  SUPABASE_URL: SUPABASE,
  SUPABASE_SECRET_KEY: 'sb_secret_bench-not-a-real-key',
  STATE_SECRET: 'bench-state-secret-not-for-production-use-01234',
  ALLOWED_ORIGINS: ORIGIN,
  FLOOR_USER_ID: USER,
}
// The Worker refuses to run without its two Workers Rate Limiting bindings (src/env.ts). These allow
// every call: the benchmark measures flows, not throttling, and every flow here is the same user.
const allowAll = { limit: async () => ({ success: true }) } as RateLimit
const env = { ...vars, USER_RATE_LIMIT: allowAll, CLIENT_RATE_LIMIT: allowAll }

// Upstream answers as the sandbox gives them, so both Workers parse the same bytes.
const TOKEN =
  '{"code": 0, "message": "OK", "request_id": "20261795576527870b35de500e11d", "data": {"access_token": "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f", "advertiser_ids": ["7412345678901234567", "7412345678901234599"], "scope": [4, 200, 7543056879933489153]}}'
const ADVERTISERS =
  '{"code": 0, "message": "OK", "request_id": "20261795576527870b35de500e11e", "data": {"list": [{"advertiser_id": "7412345678901234567", "advertiser_name": "Demo Advertiser (US)"}, {"advertiser_id": "7412345678901234599", "advertiser_name": "Demo Advertiser (EU)"}]}}'

let signedIn: Promise<{ token: string; jwks: string }> | undefined
const signIn = async () => {
  const key = await createSigningKey('bench-key')
  const now = Math.floor(Date.now() / 1000)
  const token = await sign({ iss: `${SUPABASE}/auth/v1`, sub: USER, aud: 'authenticated', role: 'authenticated', iat: now, exp: now + 3600 }, key.privateJwk)
  return { token, jwks: JSON.stringify({ keys: [key.publicJwk] }) }
}

const json = (body: string, status = 200) => new Response(body, { status, headers: { 'content-type': 'application/json' } })
let jwks = ''
globalThis.fetch = (async (input: RequestInfo | URL) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
  if (url.includes('/jwks.json')) return json(jwks)
  // The claim and the completion, as the SQL functions answer them (supabase/migrations).
  if (url.endsWith('/rpc/tiktok_claim_exchange')) return json('{"outcome":"claimed"}')
  if (url.endsWith('/rpc/tiktok_complete_exchange')) return json('{"outcome":"ok","connected_at":"2026-11-25T12:00:00.000000+00:00"}')
  if (url.includes('/access_token/')) return json(TOKEN)
  if (url.includes('/advertiser/get/')) return json(ADVERTISERS)
  return new Response('not found', { status: 404 })
}) as typeof fetch

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext

export default {
  async fetch(request: Request): Promise<Response> {
    const query = new URL(request.url).searchParams
    const flows = Number(query.get('n') ?? 0)
    const handler =
      query.get('w') === 'floor' ? (r: Request) => floor.fetch(r, vars) : (r: Request) => Promise.resolve(app.fetch(r, env, ctx))
    const session = await (signedIn ??= signIn())
    jwks = session.jwks
    const write = console.log
    const lines: string[] = []
    // Log lines are built as usual but kept in memory: the last ones explain a failed flow.
    console.log = (line: string) => {
      lines.push(line)
      if (lines.length > 20) lines.shift()
    }
    try {
      for (let i = 0; i < flows; i++) {
        const started = await handler(
          new Request(`${ORIGIN}/api/tiktok/oauth/start`, { method: 'POST', headers: { authorization: `Bearer ${session.token}`, origin: ORIGIN } }),
        )
        if (started.status !== 200) return new Response(`start: ${started.status} ${await started.text()}\n${lines.join('\n')}`, { status: 500 })
        const state = new URL(((await started.json()) as { authorize_url: string }).authorize_url).searchParams.get('state') ?? ''
        const body = JSON.stringify({ auth_code: `code-${i}`, state })
        const done = await handler(
          new Request(`${ORIGIN}/api/tiktok/oauth/exchange`, {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'content-length': String(body.length),
              origin: ORIGIN,
              cookie: started.headers.get('set-cookie')?.split(';')[0] ?? '',
            },
            body,
          }),
        )
        if (done.status !== 200) return new Response(`exchange: ${done.status} ${await done.text()}\n${lines.join('\n')}`, { status: 500 })
        await done.text()
      }
    } finally {
      console.log = write
    }
    return new Response('ok')
  },
}
