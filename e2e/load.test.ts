// The app's quota under a mix of load, against `wrangler dev` and the sandbox with the tier lowered
// (4 calls a second, 40 a minute) on both sides: the Worker's governor keeps to it, and the sandbox's
// TikTok enforces it as TikTok does (fixed windows; 40100 beyond). OAuth flows, a proxy flood and a
// sweep together; TikTok must have refused nothing. Bounded: about 70 s, then it stops by itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import { type Stack, startStack } from '../scripts/stack.ts'
import { connectUser } from './connect.ts'

const WORKER_PORT = 8880
const SANDBOX_PORT = 8893
const TIER = { TIKTOK_QPS: '4', TIKTOK_QPM: '40' }
const FLOOD_MS = 65_000
const FLOODERS = 4

let stack: Stack
beforeAll(async () => {
  stack = await startStack({ workerPort: WORKER_PORT, sandboxPort: SANDBOX_PORT, useDevVars: false, quiet: true, vars: TIER })
  await fetch(`${stack.sandboxOrigin}/__sandbox/reset`, { method: 'POST' })
}, 120_000)
afterAll(async () => {
  await stack?.stop()
})

/** TikTok's own count of what it refused, and what it received by second and minute. */
const tiktokQuota = async () => (await (await fetch(`${stack.sandboxOrigin}/__sandbox/tiktok/quota`)).json()) as { refused: Record<string, number> }

/** Users of the product: auth.users rows, as sign-up makes them. */
async function addUsers(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => crypto.randomUUID())
  for (const id of ids) await stack.sandbox.supabase.database.rows('insert into auth.users (id, email) values ($1, $2) returning id', [id, `${id}@example.com`])
  return ids
}

describe('the quota under load', () => {
  it(
    'OAuth flows, a proxy flood and a sweep together: TikTok refuses nothing, every person connects, the flood is told when to retry',
    async () => {
      expect((await connectUser(stack, DEMO_USER.id)).status).toBe(200)
      const users = await addUsers(3)
      const [, serviceKey] = stack.vars.SERVICE_KEYS!.split(':')
      const infoUrl = `${stack.workerOrigin}/api/tiktok/proxy/open_api/v1.3/advertiser/info/?advertiser_ids=${encodeURIComponent(JSON.stringify([DEMO_ADVERTISERS[0]!.id]))}`
      const statuses: Record<number, number> = {}
      const arrivals: number[] = []
      const end = Date.now() + FLOOD_MS
      const flooder = async () => {
        while (Date.now() < end) {
          const r = await fetch(infoUrl, { headers: { authorization: `Bearer ${serviceKey}`, 'x-tiktok-connect-user': DEMO_USER.id } })
          statuses[r.status] = (statuses[r.status] ?? 0) + 1
          if (r.status === 200) arrivals.push(Date.now())
          await r.arrayBuffer()
          // A well-behaved client honours Retry-After, so the flood does not spin on 429s.
          if (r.status === 429)
            await new Promise((resolve) => setTimeout(resolve, Math.min(Number(r.headers.get('retry-after') ?? 1) * 1000, Math.max(0, end - Date.now()))))
        }
      }
      const flood = Promise.all(Array.from({ length: FLOODERS }, flooder))
      // While it floods: a sweep, and people connecting a few seconds apart.
      await new Promise((resolve) => setTimeout(resolve, 3000))
      const sweep = fetch(`${stack.workerOrigin}/cdn-cgi/handler/scheduled`)
      const flows = []
      for (const user of users) {
        flows.push(await connectUser(stack, user))
        await new Promise((resolve) => setTimeout(resolve, 5000))
      }
      await Promise.all([flood, sweep])

      const refusedByTikTok = (await tiktokQuota()).refused
      const report = {
        tiktok_refused: refusedByTikTok,
        proxy_answers: statuses,
        flows: flows.map((f) => ({ status: f.status, ms: Math.round(f.ms) })),
        calls_tiktok_received: stack.sandbox.tiktok.requests.length,
        max_proxied_per_second: Math.max(...Object.values(count(arrivals, 1000))),
        max_proxied_per_minute: Math.max(...Object.values(count(arrivals, 60_000))),
      }
      console.warn(`load test: ${JSON.stringify(report)}`)
      expect(Object.values(refusedByTikTok).reduce((a, b) => a + b, 0)).toBe(0)
      expect(flows.map((f) => f.status)).toEqual(users.map(() => 200))
      expect(statuses[200]).toBeGreaterThan(0)
      expect(statuses[429]).toBeGreaterThan(0)
      expect(Object.keys(statuses).sort()).toEqual(['200', '429'])
    },
    FLOOD_MS + 60_000,
  )
})

/** How many of `times` fall in each aligned window of `length` ms. */
function count(times: number[], length: number): Record<number, number> {
  const windows: Record<number, number> = {}
  for (const t of times) windows[Math.floor(t / length)] = (windows[Math.floor(t / length)] ?? 0) + 1
  return windows
}
