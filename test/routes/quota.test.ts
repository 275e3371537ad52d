import { createExecutionContext, createScheduledController, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import worker from '../../src/index'
import type { QuotaGovernor } from '../../src/quota/governor'
import { APP_ORIGIN, BIG_ID, call, connect, exchange, expectNoLeaks, type Harness, harness, hold, settled, start, testEnv, USER_ID } from '../harness'

/** Every TikTok call the Worker makes takes a permit from the app's governor first. */
let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  await expectNoLeaks(h)
})

const QUOTA = (env as unknown as { QUOTA: DurableObjectNamespace<QuotaGovernor> }).QUOTA
const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, any>)
const KEY = 'svc-key-0123456789abcdefghijklmnopqrstuv'

/** The governor's reserve calls, recorded on their way to the real object. */
function countReserves() {
  const asked: { priority: string; permits?: number }[] = []
  const real = QUOTA.getByName.bind(QUOTA)
  vi.spyOn(QUOTA, 'getByName').mockImplementation((name: string) => {
    const stub = real(name)
    return new Proxy(stub, {
      get: (target, property) =>
        property === 'reserve'
          ? (tier: unknown, request: { priority: string; permits?: number }) => {
              asked.push(request)
              return target.reserve(tier as never, request as never)
            }
          : Reflect.get(target, property),
    })
  })
  return asked
}

/** A governor that cannot be reached, or one that refuses everything. */
const governor = (answer: 'unreachable' | 'refusing') =>
  vi.spyOn(QUOTA, 'getByName').mockImplementation(
    () =>
      ({
        reserve: async () => {
          if (answer === 'unreachable') throw new Error('governor unreachable')
          return { ok: false, reason: 'busy', retryAfterMs: 1500 }
        },
        report: async () => ({ started: false }),
      }) as never,
  )

describe('the OAuth flow', () => {
  it('asks the governor once for its two calls, alongside the claim: no round trip of its own', async () => {
    const asked = countReserves()
    const s = await start(h)
    const claim = hold()
    h.supabase.faults.add('rest', claim.fault)
    const exchanged = exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie })
    await claim.reached
    // The claim is still at the database, and the permits are already asked for.
    expect(asked).toEqual([expect.objectContaining({ priority: 'interactive', permits: 2 })])
    claim.release()
    expect((await exchanged).status).toBe(200)
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
    expect(asked).toHaveLength(1)
  })

  it('a replayed submission gives its permits back: replays of a done flow cannot fill the app’s budget', async () => {
    const tier = { qps: 1000, qpm: 60000, sweepShare: 0.5 }
    const s = await start(h)
    const code = h.tiktok.issueCode()
    expect((await exchange({ state: s.state, authCode: code, cookie: s.cookie })).status).toBe(200)
    const held = async () => (await QUOTA.getByName(testEnv.TIKTOK_APP_ID!).snapshot(tier)).held
    const afterFlow = await held()
    for (let i = 0; i < 5; i++) expect((await exchange({ state: s.state, authCode: code, cookie: s.cookie })).status).toBe(200)
    await settled()
    expect(await held()).toBe(afterFlow)
    expect(h.tiktokCalls('/access_token/')).toHaveLength(1)
  })

  it('verify and disconnect take a permit for their one call each', async () => {
    await connect(h)
    const asked = countReserves()
    const token = await h.supabase.signAccessToken(USER_ID)
    const headers = { authorization: `Bearer ${token}`, origin: APP_ORIGIN }
    expect((await call(`${APP_ORIGIN}/api/tiktok/connection?verify=true`, { headers })).status).toBe(200)
    expect((await call(`${APP_ORIGIN}/api/tiktok/connection`, { method: 'DELETE', headers })).status).toBe(200)
    expect(asked).toEqual([expect.objectContaining({ priority: 'interactive', permits: 1 }), expect.objectContaining({ priority: 'interactive', permits: 1 })])
  })

  it('a governor that cannot be reached does not stop a person connecting: logged quota.unreachable', async () => {
    governor('unreachable')
    const r = await (await connectAnyway()).json()
    expect(r).toMatchObject({ success: true })
    expect(
      lines()
        .filter((l) => l.event === 'quota.unreachable')
        .map((l) => l.outcome),
    ).toContain('proceeding')
  })

  it('a governor with no room within the wait: 429 tiktok_rate_limited, TikTok not called, the claim given back', async () => {
    governor('refusing')
    const r = await connectAnyway()
    expect(r.status).toBe(429)
    expect(await r.json()).toMatchObject({ code: 'tiktok_rate_limited' })
    expect(h.tiktok.requests).toEqual([])
    expect(await h.exchanges()).toMatchObject([{ status: 'released' }])
  })
})

describe('the proxy and the sweep do not go ahead without the governor', () => {
  it('proxy: 429 tiktok_quota_exhausted with Retry-After when the governor is unreachable or refuses; TikTok not called', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    for (const answer of ['unreachable', 'refusing'] as const) {
      const spy = governor(answer)
      const r = await call(
        `${APP_ORIGIN}/api/tiktok/proxy/open_api/v1.3/advertiser/info/?advertiser_ids=${encodeURIComponent(JSON.stringify([BIG_ID]))}`,
        { headers: { authorization: `Bearer ${KEY}`, 'x-tiktok-connect-user': USER_ID } },
        keys,
      )
      expect(r.status, answer).toBe(429)
      expect(await r.json()).toMatchObject({ code: 'tiktok_quota_exhausted' })
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      spy.mockRestore()
    }
    expect(h.tiktok.requests).toEqual([])
  })

  it('sweep: the run stops at the first refused permit, nothing revoked or changed', async () => {
    await connect(h)
    h.tiktok.requests.length = 0
    governor('unreachable')
    const ctx = createExecutionContext()
    await worker.scheduled(createScheduledController({ cron: '*/15 * * * *', scheduledTime: Date.now() }), env as never, ctx)
    await waitOnExecutionContext(ctx)
    expect(h.tiktok.requests).toEqual([])
    expect(lines().find((l) => l.event === 'sweep.run')).toMatchObject({ checked: 0, stopped_early: true })
    expect((await h.row(USER_ID)).revoked_at).toBeNull()
  })
})

const keys = { SERVICE_KEYS: `reports:${KEY}` }

/** POST /start and /exchange for the test user, whatever the governor says (for the spies above). */
async function connectAnyway(): Promise<Response> {
  const s = await start(h)
  return exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie })
}
