import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { TikTokClient, TikTokError } from '../../src/tiktok'
import {
  ADVERTISERS,
  asUser,
  BIG_ID,
  BIG_ID_2,
  connect,
  deliveriesOn,
  exchange,
  fakeQueue,
  type Harness,
  harness,
  expectNoLeaks,
  settled,
  USER_ID,
  chooseAdvertiser,
} from '../harness'

/**
 * Every change to a connection writes its event in the same transaction, and the Worker
 * hands the event's id to the EVENTS queue after answering. Here: what each route writes and sends.
 */
let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  await settled()
  await expectNoLeaks(h)
})

const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, any>)
const types = async () => (await h.events()).map((e) => e.type)
const choose = (body: Record<string, unknown>, bindings = deliveriesOn().bindings) => chooseAdvertiser(h, body, { bindings })

describe('connected', () => {
  it('the completion writes it with the connection, and its id is queued after the answer', async () => {
    const { queue, bindings } = deliveriesOn()
    const r = await connect(h, { bindings })
    expect(r.status).toBe(200)
    await settled()
    const [event] = await h.events()
    expect(event).toMatchObject({ type: 'tiktok.connection.connected', delivered_at: null, attempts: 0 })
    expect(event!.payload).toMatchObject({
      id: event!.id,
      type: 'tiktok.connection.connected',
      user_id: USER_ID,
      advertiser: { id: BIG_ID, name: 'Brand A' },
      advertisers: ADVERTISERS,
      reconnected: false,
      connected_at: (await h.row(USER_ID)).connected_at,
    })
    expect(JSON.stringify(event!.payload)).not.toContain((await h.row(USER_ID)).access_token as string)
    expect(queue.sent).toEqual([{ event_id: event!.id }])
    expect(lines().find((l) => l.event === 'events.enqueue')).toMatchObject({ outcome: 'ok', event_id: event!.id })
    // The exchange gained no upstream round trip: the event is written by the RPC it already calls.
    expect(h.supabaseCalls()).toEqual(['POST /rest/v1/rpc/tiktok_claim_exchange', 'POST /rest/v1/rpc/tiktok_complete_exchange'])
  })

  it('without WEBHOOK_URL the event is still written, and nothing is queued', async () => {
    const queue = fakeQueue()
    expect((await connect(h, { bindings: { EVENTS: queue.binding } })).status).toBe(200)
    await settled()
    expect(await types()).toEqual(['tiktok.connection.connected'])
    expect(queue.binding.send).not.toHaveBeenCalled()
  })

  it('a completion that fails writes no event and queues nothing', async () => {
    const { queue, bindings } = deliveriesOn()
    h.supabase.faults.add('rpc', { status: 503 }, 2)
    expect((await connect(h, { bindings })).status).toBe(502)
    await settled()
    expect(await h.events()).toEqual([])
    expect(queue.sent).toEqual([])
  })
})

describe('the queue send never holds up or fails the answer', () => {
  it('a send that never finishes: the answer is there anyway', async () => {
    const queue = fakeQueue({ hang: true })
    const r = await connect(h, { bindings: { ...deliveriesOn(queue).bindings } })
    expect(r.status).toBe(200)
    expect(queue.binding.send).toHaveBeenCalledOnce()
    expect(queue.sent).toEqual([])
    queue.release()
    await settled()
    expect(queue.sent).toHaveLength(1)
  })

  it('a send that fails is logged; the event waits in the table for the cron', async () => {
    const { bindings } = deliveriesOn(fakeQueue({ fail: true }))
    expect((await connect(h, { bindings })).status).toBe(200)
    await settled()
    const [event] = await h.events()
    expect(lines().find((l) => l.event === 'events.enqueue')).toMatchObject({ level: 'warn', outcome: 'error', event_id: event!.id })
  })

  it('a deploy without the EVENTS binding: logged, answered, written', async () => {
    const r = await connect(h, { bindings: { ...deliveriesOn().bindings, EVENTS: undefined } })
    expect(r.status).toBe(200)
    expect(await types()).toEqual(['tiktok.connection.connected'])
    expect(lines().find((l) => l.event === 'events.enqueue')).toMatchObject({ outcome: 'no_binding' })
  })
})

describe('advertiser_changed (user_choice)', () => {
  it('written when the choice changes, not when it is the same one again, nor when it is refused', async () => {
    const { body } = await connect(h)
    const { queue, bindings } = deliveriesOn()
    expect(await choose({ ticket: body.selection.ticket, advertiser_id: BIG_ID_2 }, bindings)).toMatchObject({ status: 200 })
    await settled()
    const changed = (await h.events()).at(-1)!
    expect(changed.payload).toMatchObject({
      type: 'tiktok.connection.advertiser_changed',
      reason: 'user_choice',
      advertiser: { id: BIG_ID_2, name: 'Brand B' },
      previous_advertiser_id: BIG_ID,
      advertisers: ADVERTISERS,
    })
    expect(queue.sent).toEqual([{ event_id: changed.id }])

    expect(await choose({ ticket: body.selection.ticket, advertiser_id: BIG_ID_2 }, bindings)).toMatchObject({ status: 200 })
    expect(await choose({ ticket: body.selection.ticket, advertiser_id: '42' }, bindings)).toMatchObject({
      status: 403,
      body: { code: 'advertiser_not_allowed' },
    })
    await settled()
    expect(await types()).toEqual(['tiktok.connection.connected', 'tiktok.connection.advertiser_changed'])
    expect(queue.sent).toHaveLength(1)
  })

  it('a database that fails: 502, no change, no event', async () => {
    const { body } = await connect(h)
    const { queue, bindings } = deliveriesOn()
    h.supabase.faults.add('rest', { status: 503 }, 2)
    expect(await choose({ ticket: body.selection.ticket, advertiser_id: BIG_ID_2 }, bindings)).toMatchObject({
      status: 502,
      body: { code: 'storage_unavailable' },
    })
    expect((await h.row(USER_ID)).advertiser_id).toBe(BIG_ID)
    expect(await types()).toEqual(['tiktok.connection.connected'])
    expect(queue.sent).toEqual([])
  })

  it('a ticket for a replaced connection is stale: nothing written', async () => {
    const first = await connect(h)
    await connect(h)
    // From the first flow's browser (a tab that kept its cookie): the ticket is bound, but stale.
    const r = await chooseAdvertiser(
      h,
      { ticket: first.body.selection.ticket, advertiser_id: BIG_ID_2 },
      { bindings: deliveriesOn().bindings, cookie: first.started.cookie },
    )
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_ticket' } })
    expect(await types()).toEqual(['tiktok.connection.connected', 'tiktok.connection.connected'])
  })
})

describe('revoked (detected_by verify)', () => {
  it('?verify=true meeting a rejected token marks it revoked once, with TikTok’s code, and queues it', async () => {
    await connect(h)
    const { queue, bindings } = deliveriesOn()
    h.tiktok.faults.add('advertisers', { tiktokCode: 40102 })
    const r = await asUser(h, '/api/tiktok/connection?verify=true', { bindings })
    expect(r).toMatchObject({ status: 200, body: { connected: false, reason: 'revoked', verified: true } })
    await settled()
    const revoked = (await h.events()).at(-1)!
    expect(revoked.payload).toMatchObject({
      type: 'tiktok.connection.revoked',
      detected_by: 'verify',
      code: 40102,
      advertiser: { id: BIG_ID, name: 'Brand A' },
    })
    expect(queue.sent).toEqual([{ event_id: revoked.id }])
    // Already revoked: TikTok is not asked again, and nothing more is written.
    expect(await asUser(h, '/api/tiktok/connection?verify=true', { bindings })).toMatchObject({ body: { connected: false, reason: 'revoked' } })
    expect(await types()).toEqual(['tiktok.connection.connected', 'tiktok.connection.revoked'])
  })

  it('a connection replaced while TikTok was asked is not marked: the refused token is not the stored one', async () => {
    await connect(h)
    const list = vi.spyOn(TikTokClient.prototype, 'listAdvertisers').mockImplementation(async () => {
      await h.sql(`update public.tiktok_connections set connected_at = connected_at + interval '1 second' where user_id = $1 returning user_id`, [USER_ID])
      throw TikTokError.fromCode(40105)
    })
    const r = await asUser(h, '/api/tiktok/connection?verify=true', { bindings: deliveriesOn().bindings })
    expect(list).toHaveBeenCalledOnce()
    // The stored connection as it is now, not a verification of it.
    expect(r).toMatchObject({ status: 200, body: { connected: true } })
    expect(r.body.verified).toBeUndefined()
    expect((await h.row(USER_ID)).revoked_at).toBeNull()
    expect(await types()).toEqual(['tiktok.connection.connected'])
  })

  it('a rate limit is not a revocation: 429, nothing written', async () => {
    await connect(h)
    h.tiktok.faults.add('advertisers', { tiktokCode: 40100 }, 3)
    const r = await asUser(h, '/api/tiktok/connection?verify=true', { bindings: deliveriesOn().bindings })
    expect(r).toMatchObject({ status: 429, body: { code: 'tiktok_rate_limited' } })
    expect(await types()).toEqual(['tiktok.connection.connected'])
  })
})

describe('disconnected', () => {
  it('written with what was connected and whether TikTok confirmed the revoke; a second disconnect writes nothing', async () => {
    await connect(h)
    const connectedAt = (await h.row(USER_ID)).connected_at
    const { queue, bindings } = deliveriesOn()
    expect(await asUser(h, '/api/tiktok/connection', { method: 'DELETE', bindings })).toMatchObject({ status: 200, body: { revoked: true } })
    await settled()
    const gone = (await h.events()).at(-1)!
    expect(gone.payload).toMatchObject({
      type: 'tiktok.connection.disconnected',
      revoked_at_tiktok: true,
      advertiser: { id: BIG_ID, name: 'Brand A' },
      connected_at: connectedAt,
      advertisers: ADVERTISERS,
    })
    expect(queue.sent).toEqual([{ event_id: gone.id }])
    expect(await asUser(h, '/api/tiktok/connection', { method: 'DELETE', bindings })).toMatchObject({ status: 200, body: { revoked: false } })
    await settled()
    expect(await types()).toEqual(['tiktok.connection.connected', 'tiktok.connection.disconnected'])
    expect(queue.sent).toHaveLength(1)
  })

  it('TikTok unreachable: cleared anyway, revoked_at_tiktok false', async () => {
    await connect(h)
    h.tiktok.faults.add('revoke', { status: 503 })
    expect(await asUser(h, '/api/tiktok/connection', { method: 'DELETE', bindings: deliveriesOn().bindings })).toMatchObject({ body: { revoked: false } })
    expect((await h.events()).at(-1)!.payload).toMatchObject({ type: 'tiktok.connection.disconnected', revoked_at_tiktok: false })
  })

  it('a newer connection made while disconnecting stays connected: 409 connection_changed, no event', async () => {
    await connect(h)
    vi.spyOn(TikTokClient.prototype, 'revokeToken').mockImplementation(async () => {
      await h.sql(`update public.tiktok_connections set connected_at = connected_at + interval '1 second' where user_id = $1 returning user_id`, [USER_ID])
      return true
    })
    const r = await asUser(h, '/api/tiktok/connection', { method: 'DELETE', bindings: deliveriesOn().bindings })
    expect(r).toMatchObject({ status: 409, body: { code: 'connection_changed' } })
    expect((await h.row(USER_ID)).access_token).not.toBeNull()
    expect(await types()).toEqual(['tiktok.connection.connected'])
  })

  it('nothing connected: no write at all', async () => {
    h.supabase.requests.length = 0
    expect(await asUser(h, '/api/tiktok/connection', { method: 'DELETE' })).toMatchObject({ status: 200, body: { success: true, revoked: false } })
    expect(h.supabaseCalls()).toEqual(['GET /rest/v1/tiktok_connections'])
    expect(await h.events()).toEqual([])
  })
})

describe('reconnect', () => {
  it('revoked → connected: false, reason revoked; connecting again clears the mark and says reconnected: true', async () => {
    await connect(h)
    h.tiktok.faults.add('advertisers', { tiktokCode: 40105 })
    await asUser(h, '/api/tiktok/connection?verify=true')
    expect(await asUser(h, '/api/tiktok/connection')).toMatchObject({ status: 200, body: { connected: false, reason: 'revoked' } })

    const { queue, bindings } = deliveriesOn()
    const again = await connect(h, { bindings })
    expect(again.status).toBe(200)
    expect((await h.row(USER_ID)).revoked_at).toBeNull()
    expect(await asUser(h, '/api/tiktok/connection')).toMatchObject({ body: { connected: true, advertiser: { id: BIG_ID } } })
    const events = await h.events()
    expect(events.map((e) => [e.type, e.payload.reconnected])).toEqual([
      ['tiktok.connection.connected', false],
      ['tiktok.connection.revoked', undefined],
      ['tiktok.connection.connected', true],
    ])
    await settled()
    expect(queue.sent).toEqual([{ event_id: events[2]!.id }])
  })

  it('after a disconnect the next connection is a fresh one: reconnected false', async () => {
    await connect(h)
    await asUser(h, '/api/tiktok/connection', { method: 'DELETE' })
    await connect(h)
    expect((await h.events()).map((e) => e.payload.reconnected)).toEqual([false, undefined, false])
  })
})

describe('a choice the sweep cleared (advertiser_removed)', () => {
  const removeChosen = async () => {
    const connectedAt = (await h.row(USER_ID)).connected_at
    await h.sql(`select public.tiktok_record_verification($1, $2, $3::jsonb) as answer`, [USER_ID, connectedAt, JSON.stringify([ADVERTISERS[1]])])
  }

  it('status says the user must choose again; a replayed callback offers the choice', async () => {
    const first = await connect(h)
    await removeChosen()
    expect(await asUser(h, '/api/tiktok/connection')).toMatchObject({
      body: { connected: true, advertiser: null, advertisers: [ADVERTISERS[1]], advertiser_required: true },
    })
    const replay = await exchange({ state: first.started.state, authCode: first.code, cookie: first.started.cookie })
    const body = (await replay.json()) as Record<string, any>
    expect(body).toMatchObject({ success: true, business_id: null, advertiser_required: true, advertisers: [ADVERTISERS[1]] })
    // One advertiser left, still a choice to make: the ticket is there.
    expect(await choose({ ticket: body.selection.ticket, advertiser_id: BIG_ID_2 })).toMatchObject({ status: 200, body: { advertiser: { id: BIG_ID_2 } } })
    expect((await h.events()).at(-1)!.payload).toMatchObject({
      type: 'tiktok.connection.advertiser_changed',
      reason: 'user_choice',
      previous_advertiser_id: null,
    })
    expect((await asUser(h, '/api/tiktok/connection')).body.advertiser_required).toBeUndefined()
  })
})
