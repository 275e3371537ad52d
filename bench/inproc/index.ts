/**
 * Benchmark only: complete start → exchange flows inside one workerd isolate, with `fetch` answered
 * from canned upstream bodies. With no I/O and no other process sharing the CPU, the CPU this takes
 * is the Worker's own cost per flow, next to the floor's. `GET /?w=ours|floor&n=N` runs N flows.
 */
import { sign } from 'hono/jwt'
import { createSigningKey } from '../../sandbox/supabase'
import worker from '../../src/index'
import floor from '../floor/index'

// The settings are the text bindings scripts/bench.ts gives this Worker: sandbox/dev.env on the
// benchmark's ports. The Worker refuses to run without its two Workers Rate Limiting bindings
// (src/env.ts): these allow every call, since the benchmark measures flows, not throttling.
const allowAll = { limit: async () => ({ success: true }) } as RateLimit
// The quota governor, always granting at once: its own cost is a Durable Object round trip, which
// the round-trip rows of the benchmark measure; here only the Worker's CPU counts.
const grantAll = { getByName: () => ({ reserve: async () => ({ ok: true, waitMs: 0 }), report: async () => ({ started: false }) }) }
type Vars = Record<string, string>

// Upstream answers as the sandbox gives them, so both Workers parse the same bytes.
const TOKEN =
  '{"code": 0, "message": "OK", "request_id": "20261795576527870b35de500e11d", "data": {"access_token": "4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f", "advertiser_ids": ["7412345678901234567", "7412345678901234599"], "scope": [4, 200, 7543056879933489153]}}'
const ADVERTISERS =
  '{"code": 0, "message": "OK", "request_id": "20261795576527870b35de500e11e", "data": {"list": [{"advertiser_id": "7412345678901234567", "advertiser_name": "Demo Advertiser (US)"}, {"advertiser_id": "7412345678901234599", "advertiser_name": "Demo Advertiser (EU)"}]}}'

const SCHEMA = '{"file": "supabase/migrations/20261125000000_tiktok_connect.sql", "version": 1}'
const COMPLETED =
  '{"outcome": "ok", "event_id": "5b8e0c1a-4f2d-4e6b-9a7c-3d1e2f4a5b6c", "advertiser": {"id": "7412345678901234567", "name": "Demo Advertiser (US)"}, "advertisers": [{"id": "7412345678901234567", "name": "Demo Advertiser (US)"}, {"id": "7412345678901234599", "name": "Demo Advertiser (EU)"}], "connected_at": "2026-11-25T12:00:00.000000+00:00"}'

let signedIn: Promise<{ token: string; jwks: string }> | undefined
const signIn = async (vars: Vars) => {
  const key = await createSigningKey('bench-key')
  const now = Math.floor(Date.now() / 1000)
  const claims = { iss: `${vars.SUPABASE_URL}/auth/v1`, sub: vars.FLOOR_USER_ID, aud: 'authenticated', role: 'authenticated', iat: now, exp: now + 3600 }
  const token = await sign(claims, key.privateJwk)
  return { token, jwks: JSON.stringify({ keys: [key.publicJwk] }) }
}

const json = (body: string, status = 200) => new Response(body, { status, headers: { 'content-type': 'application/json' } })
let jwks = ''
globalThis.fetch = (async (input: RequestInfo | URL) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
  if (url.includes('/jwks.json')) return json(jwks)
  // The schema check (once per isolate), the claim and the completion, as the SQL functions answer
  // them (supabase/migrations).
  if (url.endsWith('/rpc/tiktok_connect_schema')) return json(SCHEMA)
  if (url.endsWith('/rpc/tiktok_claim_exchange')) return json('{"outcome":"claimed"}')
  if (url.endsWith('/rpc/tiktok_complete_exchange')) return json(COMPLETED)
  if (url.includes('/access_token/')) return json(TOKEN)
  if (url.includes('/advertiser/get/')) return json(ADVERTISERS)
  return new Response('not found', { status: 404 })
}) as typeof fetch

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext

let ours: Vars | undefined
export default {
  async fetch(request: Request, vars: Vars): Promise<Response> {
    // One env object for every flow, as one isolate has: its settings checked and keys built once.
    const env = (ours ??= { ...vars, USER_RATE_LIMIT: allowAll, CLIENT_RATE_LIMIT: allowAll, QUOTA: grantAll } as unknown as Vars)
    const ORIGIN = vars.ALLOWED_ORIGINS!
    const query = new URL(request.url).searchParams
    const flows = Number(query.get('n') ?? 0)
    const handler = query.get('w') === 'floor' ? (r: Request) => floor.fetch(r, vars) : (r: Request) => Promise.resolve(worker.fetch(r, env as never, ctx))
    const session = await (signedIn ??= signIn(vars))
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
