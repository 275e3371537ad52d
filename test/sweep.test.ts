import { createExecutionContext, createScheduledController, waitOnExecutionContext } from 'cloudflare:test'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import worker from '../src/index'
import { Logger } from '../src/log'
import { compose } from '../src/services'
import { SupabaseStore } from '../src/supabase'
import { CALL_INTERVAL_MS, sweepConnections } from '../src/sweep'
import { encryptToken } from '../src/token-crypto'
import {
  ADVERTISERS,
  BIG_ID,
  BIG_ID_2,
  type Bindings,
  fakeQueue,
  type Harness,
  harness,
  expectNoLeaks,
  testEnv,
  WEBHOOK_SECRET,
  WEBHOOK_URL,
  testKeyBase64,
} from './harness'

/**
 * The revocation sweep (src/sweep.ts) and the cron around it (src/scheduled.ts). TikTok's answers
 * come from the sandbox stand-in: a token it never granted an advertiser, a token revoked through its
 * revoke endpoint, and its scripted faults.
 */
let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  await expectNoLeaks(h)
})

type Env = Parameters<typeof worker.scheduled>[1]
// EVENTS is always a fake here: the real binding would run the live queue inside the test isolate.
const cronEnv = (extra: Bindings = {}) => ({ ...testEnv, WEBHOOK_URL, WEBHOOK_SECRET, EVENTS: fakeQueue().binding, ...extra }) as unknown as Env
const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, any>)
const runLine = () => lines().findLast((l) => l.event === 'sweep.run')

/** Fires the cron as the runtime does. */
async function cron(env: Env) {
  const ctx = createExecutionContext()
  await worker.scheduled(createScheduledController({ cron: '*/15 * * * *', scheduledTime: Date.now() }), env, ctx)
  await waitOnExecutionContext(ctx)
}

let seeded = 0
/**
 * A live connection stored as a completion stores it, with a token the TikTok stand-in granted for
 * `granted` advertisers; `chosen` is the stored choice (it need not be among them).
 */
async function seed(options: { granted?: string[]; chosen?: string; stored?: (token: string, userId: string) => Promise<string> } = {}) {
  seeded++
  // Ordered ids, so "least recently checked first" is a known order among never-checked rows.
  const userId = `00000000-0000-4000-8000-${String(seeded).padStart(12, '0')}`
  const code = h.tiktok.issueCode(options.granted ?? [BIG_ID, BIG_ID_2])
  const res = await h.tiktok.app.request('/open_api/v1.3/oauth2/access_token/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app_id: testEnv.TIKTOK_APP_ID, secret: testEnv.TIKTOK_APP_SECRET, auth_code: code }),
  })
  const token = ((await res.json()) as { data: { access_token: string } }).data.access_token
  h.tiktok.requests.length = 0
  const chosen = ADVERTISERS.find((a) => a.id === (options.chosen ?? BIG_ID))!
  await h.sql(`insert into auth.users (id, email) values ($1, $2) returning id`, [userId, `sweep${seeded}@example.com`])
  await h.sql(
    `insert into public.tiktok_connections (user_id, access_token, advertiser_id, advertiser_name, advertisers, connected_at)
     values ($1, $2, $3, $4, $5::jsonb, clock_timestamp()) returning user_id`,
    [userId, options.stored ? await options.stored(token, userId) : token, chosen.id, chosen.name, JSON.stringify(ADVERTISERS)],
  )
  return { userId, token }
}

/** Revokes a token at the stand-in, as an advertiser removing the app's access would. */
async function revokeAtTikTok(token: string) {
  await h.tiktok.app.request('/open_api/v1.3/oauth2/revoke_token/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ app_id: testEnv.TIKTOK_APP_ID, secret: testEnv.TIKTOK_APP_SECRET, access_token: token }),
  })
  h.tiktok.requests.length = 0
}

/** The sweep with a clock that moves only when it sleeps; every TikTok call notes the time it started. */
async function paced(env: Record<string, string>) {
  const log = new Logger('sweep-test')
  const { services } = compose({ ...testEnv, ...env } as unknown as Env, createExecutionContext(), log)
  let clock = 0
  const starts: number[] = []
  let inFlight = 0
  let maxInFlight = 0
  const standIn = h.tiktok.app.fetch.bind(h.tiktok.app)
  vi.spyOn(h.tiktok.app, 'fetch').mockImplementation(async (request: Request, ...rest: unknown[]) => {
    starts.push(clock)
    maxInFlight = Math.max(maxInFlight, ++inFlight)
    // Yield to the event loop, so every checker that can start a call does so now.
    for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 0))
    try {
      return await standIn(request, ...(rest as []))
    } finally {
      inFlight--
    }
  })
  const sleeps: number[] = []
  const summary = await sweepConnections({
    ...services!,
    clock: {
      now: () => clock,
      sleep: async (ms: number) => {
        sleeps.push(ms)
        clock += ms
      },
    },
  })
  return { summary, starts, maxInFlight, sleeps }
}

const row = (userId: string) => h.row(userId)
const eventsOf = (userId: string) => h.events(userId)
const listedTokens = () => h.tiktokCalls('/advertiser/get/').map((r) => r.headers['access-token'])

describe('the sweep, one run through the cron', () => {
  it('records each class of TikTok answer, writes and queues the events, and logs one summary', async () => {
    const live = await seed()
    const removed = await seed({ granted: [BIG_ID], chosen: BIG_ID_2 })
    const empty = await seed({ granted: [] })
    const revoked = await seed()
    await revokeAtTikTok(revoked.token)
    const queue = fakeQueue()

    await cron(cronEnv({ EVENTS: queue.binding, SWEEP_CONCURRENCY: '10' }))

    expect(runLine()).toMatchObject({ checked: 4, revoked: 2, changed: 1, errors: 0, stopped_early: false, duration_ms: expect.any(Number) })
    expect(listedTokens().sort()).toEqual([live.token, removed.token, empty.token, revoked.token].sort())

    // Listed, same choice: the list is recorded, nothing to tell.
    expect(await row(live.userId)).toMatchObject({ revoked_at: null, advertiser_id: BIG_ID, verified_at: expect.any(String) })
    expect(await eventsOf(live.userId)).toEqual([])
    // The chosen advertiser is gone: the choice is cleared, the user must choose again.
    expect(await row(removed.userId)).toMatchObject({ revoked_at: null, advertiser_id: null, advertisers: [ADVERTISERS[0]] })
    expect((await eventsOf(removed.userId)).map((e) => e.payload)).toMatchObject([
      { type: 'tiktok.connection.advertiser_changed', reason: 'advertiser_removed', previous_advertiser_id: BIG_ID_2, advertiser: null },
    ])
    // An empty list reaches nothing: revoked.
    expect((await row(empty.userId)).revoked_at).not.toBeNull()
    expect((await eventsOf(empty.userId)).map((e) => e.payload)).toMatchObject([{ type: 'tiktok.connection.revoked', detected_by: 'sweep', code: null }])
    // A rejected token: revoked, with TikTok's code.
    expect((await row(revoked.userId)).revoked_at).not.toBeNull()
    expect((await eventsOf(revoked.userId)).map((e) => e.payload)).toMatchObject([{ type: 'tiktok.connection.revoked', detected_by: 'sweep', code: 40105 }])

    const written = [...(await eventsOf(removed.userId)), ...(await eventsOf(empty.userId)), ...(await eventsOf(revoked.userId))]
    expect(queue.sent.map((m) => m.event_id).sort()).toEqual(written.map((e) => e.id).sort())
  })

  it('a token-rejected code from the set ?verify=true uses (40102) revokes; 40001 is not in it and is left alone', async () => {
    const a = await seed()
    const b = await seed()
    h.tiktok.faults.add('advertisers', { tiktokCode: 40102 })
    h.tiktok.faults.add('advertisers', { tiktokCode: 40001 })
    // One checker, so the faults meet the connections in order; paced() keeps its second call from waiting a real second.
    expect((await paced({ SWEEP_CONCURRENCY: '1' })).summary).toMatchObject({ checked: 1, revoked: 1, errors: 1 })
    expect((await eventsOf(a.userId)).map((e) => e.payload)).toMatchObject([{ type: 'tiktok.connection.revoked', code: 40102 }])
    expect((await row(b.userId)).revoked_at).toBeNull()
  })

  it.each([
    ['a TikTok system error (50000)', { tiktokCode: 50000 }],
    ['an HTTP 503', { status: 503 }],
    ['an answer that is not JSON', { nonJson: true }],
    ['no answer in time', { hang: true }],
  ])('%s: logged, left as it is, not retried in the run', async (_, fault) => {
    const a = await seed()
    h.tiktok.faults.add('advertisers', fault)
    // A short deadline of its own: the hanging case waits for it on the real clock.
    await cron(cronEnv({ UPSTREAM_TIMEOUT_MS: '300' }))
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(1)
    expect(await row(a.userId)).toMatchObject({ revoked_at: null, advertiser_id: BIG_ID })
    expect(await eventsOf(a.userId)).toEqual([])
    expect(runLine()).toMatchObject({ checked: 0, errors: 1, stopped_early: false })
    expect(lines().find((l) => l.event === 'sweep.check')).toMatchObject({ outcome: 'error', user_id: a.userId })
  })

  it('a list with one entry that does not read as an advertiser is a bad envelope too: the choice is not cleared', async () => {
    const a = await seed({ chosen: BIG_ID_2 })
    const changed = { code: 0, message: 'OK', request_id: '2026x', data: { list: [{ advertiser_id: BIG_ID, advertiser_name: 'Brand A' }, { id: BIG_ID_2 }] } }
    h.tiktok.faults.add('advertisers', { json: changed })
    await cron(cronEnv())
    expect(await row(a.userId)).toMatchObject({ revoked_at: null, advertiser_id: BIG_ID_2, advertisers: ADVERTISERS })
    expect(await eventsOf(a.userId)).toEqual([])
    expect(lines().find((l) => l.event === 'tiktok.advertisers' && l.outcome === 'bad_envelope')).toMatchObject({
      reason: 'unreadable_advertiser',
      entries: 2,
      readable: 1,
    })
  })

  it('a list whose entries TikTok sent but none of which reads as an advertiser is a bad envelope: nothing revoked, logged', async () => {
    const a = await seed()
    // A changed answer shape: entries without a readable advertiser_id.
    const changed = { code: 0, message: 'OK', request_id: '2026x', data: { list: [{ id: BIG_ID, name: 'Brand A' }, { advertiser_id: null }] } }
    h.tiktok.faults.add('advertisers', { json: changed })
    await cron(cronEnv())
    expect(await row(a.userId)).toMatchObject({ revoked_at: null, advertiser_id: BIG_ID, advertisers: ADVERTISERS })
    expect(await eventsOf(a.userId)).toEqual([])
    expect(lines().find((l) => l.event === 'tiktok.advertisers' && l.outcome === 'bad_envelope')).toMatchObject({
      reason: 'no_readable_advertiser',
      entries: 2,
    })
    expect(runLine()).toMatchObject({ checked: 0, revoked: 0, errors: 1 })
  })

  it('opens encrypted tokens; one no configured key opens is an error, not a revocation', async () => {
    const key = `k1:${testKeyBase64(7)}`
    const other = `k9:${testKeyBase64(9)}`
    const sealed = await seed({ stored: (token, userId) => encryptToken(token, userId, key) })
    const unreadable = await seed({ stored: (token, userId) => encryptToken(token, userId, other) })
    await cron(cronEnv({ TOKEN_ENCRYPTION_KEY: key, SWEEP_CONCURRENCY: '10' }))
    expect(listedTokens()).toEqual([sealed.token])
    expect(runLine()).toMatchObject({ checked: 1, errors: 1 })
    expect((await row(unreadable.userId)).revoked_at).toBeNull()
    for (const line of h.logs) expect(line).not.toContain(sealed.token)
  })

  it('takes the least recently checked first, at most SWEEP_MAX_PER_RUN a run', async () => {
    const seeds = [await seed(), await seed(), await seed(), await seed(), await seed()]
    await cron(cronEnv({ SWEEP_MAX_PER_RUN: '3', SWEEP_CONCURRENCY: '10' }))
    expect(listedTokens().sort()).toEqual(
      seeds
        .slice(0, 3)
        .map((s) => s.token)
        .sort(),
    )
    h.tiktok.requests.length = 0
    // One run leases its batch at one instant: age the three apart, so the order has something to follow.
    for (const [i, age] of [
      [0, '10 minutes'],
      [1, '1 hour'],
      [2, '5 minutes'],
    ] as const)
      await h.sql(`update public.tiktok_connections set verified_at = now() - $2::interval where user_id = $1 returning user_id`, [seeds[i]!.userId, age])
    await cron(cronEnv({ SWEEP_MAX_PER_RUN: '3', SWEEP_CONCURRENCY: '10' }))
    // The two never checked, then the one checked longest ago.
    expect(listedTokens().sort()).toEqual([seeds[3]!.token, seeds[4]!.token, seeds[1]!.token].sort())
  })

  it('revoked connections are not swept, nor disconnected users (their row is gone)', async () => {
    const revoked = await seed()
    await h.sql(`update public.tiktok_connections set revoked_at = now() where user_id = $1 returning user_id`, [revoked.userId])
    const disconnected = await seed()
    await h.sql(`select public.tiktok_disconnect($1, true) as answer`, [disconnected.userId])
    expect(await row(disconnected.userId)).toMatchObject({ access_token: null, connected_at: null })
    await cron(cronEnv())
    expect(h.tiktok.requests).toEqual([])
    expect(runLine()).toMatchObject({ checked: 0, errors: 0 })
  })
})

describe('the sweep’s pace', () => {
  it.each([1, 2, 3])('SWEEP_CONCURRENCY=%i: never more calls at once, nor more starts in any second', async (concurrency) => {
    for (let i = 0; i < 7; i++) await seed()
    const { summary, starts, maxInFlight } = await paced({ SWEEP_CONCURRENCY: String(concurrency) })
    expect(summary).toMatchObject({ checked: 7, errors: 0 })
    expect(maxInFlight).toBe(concurrency)
    for (const t of starts) expect(starts.filter((s) => s >= t && s < t + CALL_INTERVAL_MS).length).toBeLessThanOrEqual(concurrency)
    // Seven calls, `concurrency` a second: the run spans ceil(7 / c) - 1 seconds of pacing.
    expect(Math.max(...starts)).toBe((Math.ceil(7 / concurrency) - 1) * CALL_INTERVAL_MS)
  })

  it.each([40100, 40016, 40133])('a TikTok rate limit (%i) stops the run: no further call, the rest waits', async (code) => {
    const seeds = [await seed(), await seed(), await seed(), await seed()]
    h.tiktok.faults.add('advertisers', {})
    h.tiktok.faults.add('advertisers', { tiktokCode: code })
    const { summary } = await paced({ SWEEP_CONCURRENCY: '1' })
    expect(summary).toMatchObject({ checked: 1, stopped_early: true, errors: 0 })
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(2)
    expect(runLine()).toMatchObject({ level: 'warn', stopped_early: true })
    for (const s of seeds) {
      expect((await row(s.userId)).revoked_at).toBeNull()
      expect(await eventsOf(s.userId)).toEqual([])
    }
  })

  it('with several checkers, the ones in flight finish and none starts after the rate limit', async () => {
    for (let i = 0; i < 6; i++) await seed()
    h.tiktok.faults.add('advertisers', { tiktokCode: 40100 })
    const { summary } = await paced({ SWEEP_CONCURRENCY: '2' })
    expect(summary.stopped_early).toBe(true)
    expect(summary.checked).toBe(1)
    expect(h.tiktokCalls('/advertiser/get/')).toHaveLength(2)
  })
})

describe('the cron’s three parts', () => {
  const backdate = (id: string, age: string, attempts = 0) =>
    h.sql(`update public.tiktok_connection_events set created_at = now() - $2::interval, attempts = $3 where id = $1 returning id`, [id, age, attempts])
  /** An event as the functions write it: the disconnection of a seeded connection. */
  const event = async (): Promise<string> => {
    const { userId } = await seed()
    const [answer] = await h.sql(`select public.tiktok_disconnect($1, true) as answer`, [userId])
    return (answer as { answer: { event_id: string } }).answer.event_id
  }

  it('sends undelivered events again once due: never tried after 5 minutes, tried ones once their queue retries are surely over', async () => {
    const _fresh = await event()
    const lost = await event()
    await backdate(lost, '6 minutes')
    const retrying = await event()
    await backdate(retrying, '10 minutes', 3)
    const deadLettered = await event()
    await backdate(deadLettered, '25 minutes', 6)
    const secondRound = await event()
    await backdate(secondRound, '50 minutes', 12)
    const delivered = await event()
    await backdate(delivered, '1 hour')
    await h.sql(`select public.tiktok_mark_event_delivered($1) as answer`, [delivered])

    const queue = fakeQueue()
    await cron(cronEnv({ EVENTS: queue.binding }))
    expect(queue.sent.map((m) => m.event_id).sort()).toEqual([lost, deadLettered].sort())
    // Not: fresh, retrying (inside its first queue cycle), secondRound (due at 1 hour), delivered.
    expect(lines().find((l) => l.event === 'events.redeliver')).toMatchObject({ outcome: 'ok', undelivered: 4, sent: 2 })
  })

  it('sends at most 200 a run, in batches of 100', async () => {
    const { userId } = await seed()
    await h.sql(
      `select public.tiktok_write_event($1, 'tiktok.connection.revoked', now(), now(), null, null, '[]'::jsonb, '{}'::jsonb) from generate_series(1, 250)`,
      [userId],
    )
    await h.sql(`update public.tiktok_connection_events set created_at = now() - interval '1 hour' returning id`)
    const queue = fakeQueue()
    await cron(cronEnv({ EVENTS: queue.binding }))
    expect(queue.sent).toHaveLength(200)
    expect(queue.binding.sendBatch).toHaveBeenCalledTimes(2)
  })

  it('without WEBHOOK_URL nothing is sent again: the events are for reading in the table', async () => {
    await backdate(await event(), '1 hour')
    const queue = fakeQueue()
    await cron(cronEnv({ WEBHOOK_URL: '', WEBHOOK_SECRET: '', EVENTS: queue.binding }))
    expect(queue.binding.sendBatch).not.toHaveBeenCalled()
  })

  it('prunes delivered events older than 30 days, and only those', async () => {
    const old = await event()
    const oldUndelivered = await event()
    const recent = await event()
    for (const id of [old, recent]) await h.sql(`select public.tiktok_mark_event_delivered($1) as answer`, [id])
    await backdate(old, '31 days', 1)
    await backdate(oldUndelivered, '31 days', 6)
    await cron(cronEnv({ EVENTS: fakeQueue().binding }))
    const left = (await h.sql(`select id from public.tiktok_connection_events`)).map((r) => r.id)
    expect(left.sort()).toEqual([oldUndelivered, recent].sort())
    expect(lines().find((l) => l.event === 'events.prune')).toMatchObject({ outcome: 'ok', deleted: 1 })
  })

  it('the sweep runs when the re-enqueue and the pruning fail', async () => {
    await seed()
    vi.spyOn(SupabaseStore.prototype, 'eventsToDeliver').mockRejectedValue(new Error('boom'))
    vi.spyOn(SupabaseStore.prototype, 'pruneEvents').mockRejectedValue(new Error('boom'))
    await cron(cronEnv())
    expect(runLine()).toMatchObject({ checked: 1 })
    expect(
      lines()
        .filter((l) => l.event === 'cron.part')
        .map((l) => [l.part, l.level]),
    ).toEqual([
      ['redeliver', 'error'],
      ['prune', 'error'],
    ])
  })

  it('the re-enqueue and the pruning run when the sweep cannot take its batch', async () => {
    vi.spyOn(SupabaseStore.prototype, 'sweepBatch').mockRejectedValue(new Error('boom'))
    await cron(cronEnv())
    expect(runLine()).toMatchObject({ checked: 0, errors: 1 })
    expect(lines().find((l) => l.event === 'events.prune')).toMatchObject({ outcome: 'ok' })
    expect(lines().find((l) => l.event === 'events.redeliver')).toMatchObject({ outcome: 'ok' })
  })

  it('settings that do not check out: logged, nothing done', async () => {
    await seed()
    await cron(cronEnv({ SWEEP_MAX_PER_RUN: 'lots' }))
    expect(lines().find((l) => l.event === 'config.invalid')).toMatchObject({ settings: [{ name: 'SWEEP_MAX_PER_RUN', problem: 'malformed' }] })
    expect(h.tiktok.requests).toEqual([])
  })
})
