import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Postgres } from './postgres.ts'
import { type Database, inOneTransaction, MIGRATION, project, startCluster } from './seed.ts'

const EVENTS = 'public.tiktok_connection_events'
const BIG_A = '7012345678901234567' // > 2^53: a JSON number would round it
const BIG_B = '7012345678901234599'
const BIG_C = '7099999999999999999'
const ADVERTISERS = [
  { id: BIG_A, name: 'Brand A' },
  { id: BIG_B, name: 'Brand B' },
]
const A = ADVERTISERS[0]!
const B = ADVERTISERS[1]!

type Answer = { outcome: string; event_id: string | null; [key: string]: unknown }
type Payload = Record<string, unknown> & {
  id: string
  type: string
  advertiser: { id: string; name: string } | null
  advertisers: { id: string; name: string }[]
}

let pg: Postgres
let db: Database
let users = 0
let nonces = 0

beforeAll(async () => {
  pg = await startCluster()
  db = await project(pg, 'events')
})
afterAll(() => pg?.stop())

const sql = (statement: string) => db.sql(statement)
const svc = (statement: string) => db.as('service_role', statement)
const call = async (fn: string): Promise<Answer> => JSON.parse(await svc(`select public.${fn}`)) as Answer
const q = (value: unknown) => `'${typeof value === 'string' ? value : JSON.stringify(value).replaceAll("'", "''")}'`

/** A fresh Supabase user (ids sort in creation order). */
async function newUser(): Promise<string> {
  users++
  const id = `aaaaaaaa-0000-4000-8000-${String(users).padStart(12, '0')}`
  await sql(`insert into auth.users (id, email) values ('${id}', 'user${users}@example.com')`)
  return id
}

/** Claim and complete, as the Worker does (the first advertiser chosen); answers the completion's jsonb. */
async function connect(user: string, token: string, advertisers: { id: string; name: string }[] = ADVERTISERS): Promise<Answer & { connected_at: string }> {
  const nonce = `nonce-${++nonces}`
  expect(await svc(`select public.tiktok_claim_exchange('${nonce}', '${user}', 'h', 'r-${nonce}') ->> 'outcome'`)).toBe('claimed')
  return (await call(
    `tiktok_complete_exchange('${nonce}', '${user}', 'r-${nonce}', '${token}', '${advertisers[0]!.id}', ${q(advertisers)}, '/profile')`,
  )) as Answer & {
    connected_at: string
  }
}

/** The user's events, oldest first. */
async function events(user: string): Promise<Payload[]> {
  return JSON.parse(
    await sql(`select coalesce(jsonb_agg(payload order by created_at, payload ->> 'occurred_at'), '[]') from ${EVENTS} where user_id = '${user}'`),
  ) as Payload[]
}

type Row = {
  token: string | null
  advertiser_id: string | null
  advertiser_name: string | null
  advertisers: { id: string; name: string }[] | null
  connected_at: string | null
  revoked_at: string | null
  revoked_code: number | null
  verified_at: string | null
}
/** The user's connection, each column null when there is none. */
async function row(user: string): Promise<Row> {
  return JSON.parse(
    await sql(
      `select jsonb_build_object('token', c.access_token, 'advertiser_id', c.advertiser_id, 'advertiser_name', c.advertiser_name,
              'advertisers', c.advertisers, 'connected_at', c.connected_at, 'revoked_at', c.revoked_at, 'revoked_code', c.revoked_code,
              'verified_at', c.verified_at)
         from auth.users u left join public.tiktok_connections c on c.user_id = u.id where u.id = '${user}'`,
    ),
  ) as Row
}
const NOT_CONNECTED: Row = {
  token: null,
  advertiser_id: null,
  advertiser_name: null,
  advertisers: null,
  connected_at: null,
  revoked_at: null,
  revoked_code: null,
  verified_at: null,
}

/** Every id in a payload is a JSON string. */
function expectStringIds(payload: Payload) {
  for (const key of ['id', 'user_id', 'previous_advertiser_id'])
    if (payload[key] !== null && payload[key] !== undefined) expect(typeof payload[key], key).toBe('string')
  if (payload.advertiser) expect(typeof payload.advertiser.id).toBe('string')
  for (const a of payload.advertisers) expect(typeof a.id).toBe('string')
}

describe('connection events on PostgreSQL 15', () => {
  it('completion writes connected: reconnected false, then true over a stored connection, false again after a disconnect', async () => {
    const user = await newUser()
    const first = await connect(user, 'secret-token-1')
    expect(first.outcome).toBe('ok')
    expect(first.event_id).toMatch(/^[0-9a-f-]{36}$/)
    let list = await events(user)
    expect(list).toEqual([
      {
        id: first.event_id,
        type: 'tiktok.connection.connected',
        occurred_at: first.connected_at,
        user_id: user,
        connected_at: first.connected_at,
        advertiser: A,
        advertisers: ADVERTISERS,
        reconnected: false,
      },
    ])
    // Verified at connection time: the completion has just listed the advertisers.
    expect((await row(user)).verified_at).not.toBeNull()

    const second = await connect(user, 'secret-token-2', [B])
    list = await events(user)
    expect(list.map((e) => [e.type, e.reconnected, e.advertiser?.id, e.connected_at])).toEqual([
      ['tiktok.connection.connected', false, BIG_A, first.connected_at],
      ['tiktok.connection.connected', true, BIG_B, second.connected_at],
    ])
    expect(list[1]!.id).toBe(second.event_id)

    // Revoked is still "before": the product knew this connection.
    expect((await call(`tiktok_mark_revoked('${user}', 'sweep', 40105, '${second.connected_at}')`)).outcome).toBe('ok')
    await connect(user, 'secret-token-3')
    expect((await events(user)).at(-1)).toMatchObject({ type: 'tiktok.connection.connected', reconnected: true })

    // A disconnect deletes the row: the next one is a new connection, not a reconnection.
    expect((await call(`tiktok_disconnect('${user}', true)`)).outcome).toBe('ok')
    await connect(user, 'secret-token-4')
    list = await events(user)
    expect(list.map((e) => [e.type, e.reconnected ?? null])).toEqual([
      ['tiktok.connection.connected', false],
      ['tiktok.connection.connected', true],
      ['tiktok.connection.revoked', null],
      ['tiktok.connection.connected', true],
      ['tiktok.connection.disconnected', null],
      ['tiktok.connection.connected', false],
    ])

    // Never the token, in any event, as stored.
    const stored = await sql(`select string_agg(payload::text, ' ') from ${EVENTS} where user_id = '${user}'`)
    expect(stored).toContain(BIG_A)
    expect(stored).not.toContain('secret-token')
    for (const payload of list) expectStringIds(payload)
  })

  it('a completion that loses its claim writes no event and answers event_id null', async () => {
    const user = await newUser()
    expect(await svc(`select public.tiktok_claim_exchange('lost-1', '${user}', 'h', 'mine') ->> 'outcome'`)).toBe('claimed')
    const answer = await call(`tiktok_complete_exchange('lost-1', '${user}', 'not-mine', 't', '${BIG_A}', ${q(ADVERTISERS)}, '/')`)
    expect(answer).toEqual({ outcome: 'claim_lost', event_id: null })
    expect(await events(user)).toEqual([])
  })

  it('ids stay strings: an id as a JSON number is refused before anything is stored, so every stored and sent id is a string', async () => {
    const user = await newUser()
    // Not what the Worker sends; what another writer could. jsonb would keep the number exact (the
    // text goes to PostgreSQL as is: JSON.parse here would already round it), but a consumer would not.
    expect(await svc(`select public.tiktok_claim_exchange('numbers-1', '${user}', 'h', 'r') ->> 'outcome'`)).toBe('claimed')
    await expect(call(`tiktok_complete_exchange('numbers-1', '${user}', 'r', 't', '${BIG_A}', '[{"id": ${BIG_A}, "name": "Brand A"}]', '/')`)).rejects.toThrow(
      /tiktok_connections_advertisers_shape/,
    )
    expect(await row(user)).toEqual(NOT_CONNECTED)
    expect(await events(user)).toEqual([])
    const answer = await call(`tiktok_complete_exchange('numbers-1', '${user}', 'r', 't', '${BIG_A}', '[{"id": "${BIG_A}", "name": "Brand A"}]', '/')`)
    const [event] = await events(user)
    expectStringIds(event!)
    expect(
      await sql(
        `select jsonb_typeof(payload -> 'advertisers' -> 0 -> 'id') || jsonb_typeof(payload -> 'advertiser' -> 'id') from ${EVENTS} where id = '${answer.event_id}'`,
      ),
    ).toBe('stringstring')
  })

  describe('tiktok_choose_advertiser', () => {
    it('stores an id from the stored list and writes advertiser_changed (user_choice); the same id again writes nothing', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 'secret-choose')
      const chosen = await call(`tiktok_choose_advertiser('${user}', '${BIG_B}', '${connected_at}')`)
      expect(chosen).toEqual({ outcome: 'ok', advertiser: B, advertisers: ADVERTISERS, event_id: expect.any(String) })
      const row1 = await row(user)
      expect([row1.advertiser_id, row1.advertiser_name]).toEqual([BIG_B, 'Brand B'])
      const list = await events(user)
      expect(list).toHaveLength(2)
      expect(list[1]).toEqual({
        id: chosen.event_id,
        type: 'tiktok.connection.advertiser_changed',
        occurred_at: expect.any(String),
        user_id: user,
        connected_at,
        advertiser: B,
        advertisers: ADVERTISERS,
        reason: 'user_choice',
        previous_advertiser_id: BIG_A,
      })
      expectStringIds(list[1]!)

      const again = await call(`tiktok_choose_advertiser('${user}', '${BIG_B}', '${connected_at}')`)
      expect(again).toEqual({ outcome: 'ok', advertiser: B, advertisers: ADVERTISERS, event_id: null })
      expect(await events(user)).toHaveLength(2)
    })

    it('refuses an id not in the stored list, a replaced connection, and no live connection, changing nothing', async () => {
      const user = await newUser()
      const old = await connect(user, 't1')
      const current = await connect(user, 't2')
      const before = await row(user)
      expect(await call(`tiktok_choose_advertiser('${user}', '${BIG_C}', '${current.connected_at}')`)).toEqual({ outcome: 'not_allowed', event_id: null })
      expect(await call(`tiktok_choose_advertiser('${user}', '${BIG_B}', '${old.connected_at}')`)).toEqual({ outcome: 'stale', event_id: null })
      // Not a pattern match, not a prefix: the exact id.
      expect((await call(`tiktok_choose_advertiser('${user}', '${BIG_B.slice(0, -1)}', '${current.connected_at}')`)).outcome).toBe('not_allowed')
      expect(await row(user)).toEqual(before)

      await call(`tiktok_mark_revoked('${user}', 'verify', 40105, '${current.connected_at}')`)
      expect(await call(`tiktok_choose_advertiser('${user}', '${BIG_B}', '${current.connected_at}')`)).toEqual({ outcome: 'not_connected', event_id: null })
      await call(`tiktok_disconnect('${user}', false)`)
      expect(await call(`tiktok_choose_advertiser('${user}', '${BIG_B}', '${current.connected_at}')`)).toEqual({ outcome: 'not_connected', event_id: null })
      expect(await call(`tiktok_choose_advertiser('99999999-9999-4999-8999-999999999999', '${BIG_B}', '${current.connected_at}')`)).toEqual({
        outcome: 'not_connected',
        event_id: null,
      })
      expect((await events(user)).map((e) => e.type)).toEqual([
        'tiktok.connection.connected',
        'tiktok.connection.connected',
        'tiktok.connection.revoked',
        'tiktok.connection.disconnected',
      ])
    })
  })

  describe('tiktok_mark_revoked', () => {
    it('marks once: a second report (verify after sweep) writes no second event', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 'secret-revoke')
      const first = await call(`tiktok_mark_revoked('${user}', 'verify', 40105, '${connected_at}')`)
      expect(first.outcome).toBe('ok')
      const marked = await row(user)
      expect(marked.revoked_at).not.toBeNull()
      expect(marked.revoked_code).toBe(40105)
      // The connection is kept, revoked, so the product can say what was lost.
      expect([marked.token, marked.advertiser_id]).toEqual(['secret-revoke', BIG_A])
      expect(await call(`tiktok_mark_revoked('${user}', 'sweep', 40102, '${connected_at}')`)).toEqual({ outcome: 'already_revoked', event_id: null })
      expect(await row(user)).toEqual(marked)
      const list = await events(user)
      expect(list).toHaveLength(2)
      expect(list[1]).toEqual({
        id: first.event_id,
        type: 'tiktok.connection.revoked',
        occurred_at: expect.any(String),
        user_id: user,
        connected_at,
        advertiser: A,
        advertisers: ADVERTISERS,
        detected_by: 'verify',
        code: 40105,
      })
      expect(JSON.stringify(list)).not.toContain('secret-revoke')
    })

    it('takes detected_by proxy too (a product call through the Worker met the refusal)', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 't')
      expect((await call(`tiktok_mark_revoked('${user}', 'proxy', 40105, '${connected_at}')`)).outcome).toBe('ok')
      expect((await events(user)).at(-1)).toMatchObject({ type: 'tiktok.connection.revoked', detected_by: 'proxy', code: 40105 })
    })

    it('leaves a newer connection alone (stale), says not_connected without one, and refuses an unknown detected_by', async () => {
      const user = await newUser()
      const old = await connect(user, 't1')
      await connect(user, 't2')
      expect(await call(`tiktok_mark_revoked('${user}', 'sweep', 40105, '${old.connected_at}')`)).toEqual({ outcome: 'stale', event_id: null })
      expect((await row(user)).revoked_at).toBeNull()
      await expect(call(`tiktok_mark_revoked('${user}', 'browser', 40105, '${old.connected_at}')`)).rejects.toThrow(
        /detected_by must be verify, sweep or proxy/,
      )
      await expect(call(`tiktok_mark_revoked('${user}', null, 40105, '${old.connected_at}')`)).rejects.toThrow(/detected_by/)
      const nobody = await newUser()
      expect(await call(`tiktok_mark_revoked('${nobody}', 'sweep', 40105, '${old.connected_at}')`)).toEqual({ outcome: 'not_connected', event_id: null })
      expect((await events(user)).map((e) => e.type)).toEqual(['tiktok.connection.connected', 'tiktok.connection.connected'])
      expect(await events(nobody)).toEqual([])
    })
  })

  describe('tiktok_disconnect', () => {
    it('deletes the connection and writes disconnected with what was connected, once', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 'secret-bye')
      const answer = await call(`tiktok_disconnect('${user}', true)`)
      expect(answer.outcome).toBe('ok')
      expect(await row(user)).toEqual(NOT_CONNECTED)
      expect(await sql(`select count(*) from public.tiktok_connections where user_id = '${user}'`)).toBe('0')
      const list = await events(user)
      expect(list[1]).toEqual({
        id: answer.event_id,
        type: 'tiktok.connection.disconnected',
        occurred_at: expect.any(String),
        user_id: user,
        connected_at,
        advertiser: A,
        advertisers: ADVERTISERS,
        revoked_at_tiktok: true,
      })
      expect(await call(`tiktok_disconnect('${user}', true)`)).toEqual({ outcome: 'not_connected', event_id: null })
      expect(await events(user)).toHaveLength(2)
      expect(JSON.stringify(list)).not.toContain('secret-bye')
    })

    it('reports revoked_at_tiktok false, spares a newer connection, says not_connected for a user never connected', async () => {
      const user = await newUser()
      const old = await connect(user, 't1')
      const current = await connect(user, 't2')
      // The connection the Worker revoked was replaced meanwhile (another tab): nothing changes.
      expect(await call(`tiktok_disconnect('${user}', true, '${old.connected_at}')`)).toEqual({ outcome: 'stale', event_id: null })
      expect((await row(user)).token).toBe('t2')
      const answer = await call(`tiktok_disconnect('${user}', false, '${current.connected_at}')`)
      expect(answer.outcome).toBe('ok')
      expect((await events(user)).at(-1)).toMatchObject({
        type: 'tiktok.connection.disconnected',
        revoked_at_tiktok: false,
        connected_at: current.connected_at,
      })

      expect(await row(user)).toEqual(NOT_CONNECTED)
      expect(await events(user)).toHaveLength(3)
      expect(await call(`tiktok_disconnect('${await newUser()}', true)`)).toEqual({ outcome: 'not_connected', event_id: null })
      expect(await call(`tiktok_disconnect('99999999-9999-4999-8999-999999999999', true)`)).toEqual({ outcome: 'not_connected', event_id: null })
    })
  })

  describe('tiktok_record_verification', () => {
    it('same list: verified, nothing else, no event', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 't')
      await sql(`update public.tiktok_connections set verified_at = '2026-01-01T00:00:00Z' where user_id = '${user}'`)
      expect(await call(`tiktok_record_verification('${user}', '${connected_at}', ${q(ADVERTISERS)})`)).toEqual({ outcome: 'ok', event_id: null })
      const after = await row(user)
      expect(new Date(after.verified_at!).getTime()).toBeGreaterThan(Date.parse('2026-01-02T00:00:00Z'))
      expect([after.advertiser_id, after.advertiser_name, after.advertisers]).toEqual([BIG_A, 'Brand A', ADVERTISERS])
      expect(await events(user)).toHaveLength(1)
    })

    it('list changed, the chosen one still there: the list (and its name) updated, no event', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 't')
      const changed = [
        { id: BIG_C, name: 'Brand C' },
        { id: BIG_A, name: 'Brand A (renamed)', extra: 'dropped' },
      ]
      expect(await call(`tiktok_record_verification('${user}', '${connected_at}', ${q(changed)})`)).toEqual({ outcome: 'ok', event_id: null })
      const after = await row(user)
      expect([after.advertiser_id, after.advertiser_name, after.advertisers]).toEqual([
        BIG_A,
        'Brand A (renamed)',
        [
          { id: BIG_C, name: 'Brand C' },
          { id: BIG_A, name: 'Brand A (renamed)' },
        ],
      ])
      expect(await events(user)).toHaveLength(1)
    })

    it('the chosen advertiser removed: the choice cleared, advertiser_changed (advertiser_removed)', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 'secret-removed')
      const remaining = [{ id: BIG_B, name: 'Brand B' }]
      const answer = await call(`tiktok_record_verification('${user}', '${connected_at}', ${q(remaining)})`)
      expect(answer.outcome).toBe('advertiser_removed')
      const after = await row(user)
      expect([after.advertiser_id, after.advertiser_name, after.advertisers, after.revoked_at]).toEqual([null, null, remaining, null])
      const event = (await events(user))[1]!
      expect(event).toEqual({
        id: answer.event_id,
        type: 'tiktok.connection.advertiser_changed',
        occurred_at: expect.any(String),
        user_id: user,
        connected_at,
        advertiser: null,
        advertisers: remaining,
        reason: 'advertiser_removed',
        previous_advertiser_id: BIG_A,
      })
      expectStringIds(event)
      // Nothing chosen now: a further change of the list has no choice to lose.
      expect((await call(`tiktok_record_verification('${user}', '${connected_at}', ${q(ADVERTISERS)})`)).outcome).toBe('ok')
      // The user picks again; the choice route accepts the new list.
      expect((await call(`tiktok_choose_advertiser('${user}', '${BIG_B}', '${connected_at}')`)).event_id).not.toBeNull()
      expect((await events(user)).map((e) => e.reason ?? null)).toEqual([null, 'advertiser_removed', 'user_choice'])
    })

    it('an empty list: revoked (detected_by sweep, code null), once', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 't')
      const answer = await call(`tiktok_record_verification('${user}', '${connected_at}', '[]')`)
      expect(answer.outcome).toBe('revoked')
      const after = await row(user)
      expect(after.revoked_at).not.toBeNull()
      expect([after.advertiser_id, after.advertisers, after.revoked_code]).toEqual([BIG_A, ADVERTISERS, null])
      expect((await events(user))[1]).toEqual({
        id: answer.event_id,
        type: 'tiktok.connection.revoked',
        occurred_at: expect.any(String),
        user_id: user,
        connected_at,
        advertiser: A,
        advertisers: ADVERTISERS,
        detected_by: 'sweep',
        code: null,
      })
      // Revoked now: another sweep answer, or the verify route, changes nothing.
      expect(await call(`tiktok_record_verification('${user}', '${connected_at}', '[]')`)).toEqual({ outcome: 'stale', event_id: null })
      expect((await call(`tiktok_mark_revoked('${user}', 'verify', 40105, '${connected_at}')`)).outcome).toBe('already_revoked')
      expect(await events(user)).toHaveLength(2)
    })

    it('an answer about a replaced connection is stale and writes nothing', async () => {
      const user = await newUser()
      const old = await connect(user, 't1')
      await connect(user, 't2')
      const before = await row(user)
      expect(await call(`tiktok_record_verification('${user}', '${old.connected_at}', '[]')`)).toEqual({ outcome: 'stale', event_id: null })
      expect(await call(`tiktok_record_verification('${user}', '${old.connected_at}', ${q([{ id: BIG_C, name: 'C' }])})`)).toEqual({
        outcome: 'stale',
        event_id: null,
      })
      expect(await row(user)).toEqual(before)
      expect(await events(user)).toHaveLength(2)
    })

    it('refuses a malformed list before storing anything', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 't')
      const before = await row(user)
      for (const bad of [
        { id: BIG_A, name: 'A' }, // not an array
        [{ id: Number(BIG_A), name: 'A' }], // a number id
        [{ id: '12x', name: 'A' }],
        [{ id: BIG_A }],
        [{ id: BIG_A, name: 7 }],
        ['7012345678901234567'],
        [{ id: '1'.repeat(33), name: 'A' }],
      ]) {
        await expect(call(`tiktok_record_verification('${user}', '${connected_at}', ${q(bad)})`), JSON.stringify(bad)).rejects.toThrow(
          /advertisers must be a JSON array|violates check constraint "tiktok_connections_(advertisers_shape|chosen_advertiser)"/,
        )
      }
      await expect(call(`tiktok_record_verification('${user}', '${connected_at}', null)`)).rejects.toThrow(/advertisers must be a JSON array, not null/)
      expect(await row(user)).toEqual(before)
    })
  })

  describe('each change and its event commit together', () => {
    // A trigger that fails the event's insert on demand, after the change was made in the same
    // function; and one that fails the completion's last step, after its event was written.
    beforeAll(async () => {
      await sql(`
        create function public.test_fail() returns trigger language plpgsql as $$
        begin
          if current_setting('test.fail', true) = TG_TABLE_NAME then
            raise exception 'forced failure on %', TG_TABLE_NAME;
          end if;
          return new;
        end;
        $$;
        create trigger test_fail before insert on public.tiktok_connection_events for each row execute function public.test_fail();
        create trigger test_fail before update on public.tiktok_oauth_exchanges for each row execute function public.test_fail();
      `)
    })
    afterAll(async () => {
      await sql(`
        drop trigger test_fail on public.tiktok_connection_events;
        drop trigger test_fail on public.tiktok_oauth_exchanges;
        drop function public.test_fail();
      `)
    })
    const failing = (table: string, fn: string) => svc(`set test.fail = '${table}'; select public.${fn}`)

    it('a failed event rolls back the change: choose, mark_revoked, record_verification, disconnect, completion', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 't1')
      const before = await row(user)
      for (const fn of [
        `tiktok_choose_advertiser('${user}', '${BIG_B}', '${connected_at}')`,
        `tiktok_mark_revoked('${user}', 'sweep', 40105, '${connected_at}')`,
        `tiktok_record_verification('${user}', '${connected_at}', ${q([{ id: BIG_B, name: 'Brand B' }])})`,
        `tiktok_record_verification('${user}', '${connected_at}', '[]')`,
        `tiktok_disconnect('${user}', true)`,
      ]) {
        await expect(failing('tiktok_connection_events', fn), fn).rejects.toThrow(/forced failure on tiktok_connection_events/)
        expect(await row(user), fn).toEqual(before)
      }
      expect(await events(user)).toHaveLength(1)

      expect(await svc(`select public.tiktok_claim_exchange('atomic-1', '${user}', 'h', 'r') ->> 'outcome'`)).toBe('claimed')
      const complete = `tiktok_complete_exchange('atomic-1', '${user}', 'r', 't2', '${BIG_B}', ${q(ADVERTISERS)}, '/')`
      await expect(failing('tiktok_connection_events', complete)).rejects.toThrow(/forced failure/)
      expect(await row(user)).toEqual(before)
      // The event is written before the claim is marked done: a failure there takes the event back too.
      await expect(failing('tiktok_oauth_exchanges', complete)).rejects.toThrow(/forced failure on tiktok_oauth_exchanges/)
      expect(await row(user)).toEqual(before)
      expect(await events(user)).toHaveLength(1)
      expect(await svc("select status from public.tiktok_oauth_exchanges where state_nonce = 'atomic-1'")).toBe('pending')
      // Without the fault the same call commits both.
      expect((await call(complete)).outcome).toBe('ok')
      expect((await row(user)).token).toBe('t2')
      expect(await events(user)).toHaveLength(2)
    })

    it('a transaction rolled back by its caller takes the event with it', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 't1')
      await svc(`begin; select public.tiktok_choose_advertiser('${user}', '${BIG_B}', '${connected_at}'); rollback;`)
      expect((await row(user)).advertiser_id).toBe(BIG_A)
      expect(await events(user)).toHaveLength(1)
    })
  })

  describe('tiktok_sweep_batch', () => {
    it('hands out live connections least recently verified first (never first), at most p_limit, with token and connected_at', async () => {
      // Only this test's connections are live.
      await sql('update public.tiktok_connections set revoked_at = now() where revoked_at is null')
      const [never1, never2, old, recent, revoked, cleared] = [
        await newUser(),
        await newUser(),
        await newUser(),
        await newUser(),
        await newUser(),
        await newUser(),
      ] as [string, string, string, string, string, string]
      for (const [user, token] of [
        [never1, 'tok-n1'],
        [never2, 'tok-n2'],
        [old, 'tok-old'],
        [recent, 'tok-recent'],
        [revoked, 'tok-rev'],
        [cleared, 'tok-clr'],
      ] as const)
        await connect(user, token)
      await sql(`
        update public.tiktok_connections set verified_at = null where user_id in ('${never1}', '${never2}');
        update public.tiktok_connections set verified_at = now() - interval '2 days' where user_id = '${old}';
        update public.tiktok_connections set verified_at = now() - interval '1 hour' where user_id = '${recent}';
        update public.tiktok_connections set revoked_at = now(), verified_at = null where user_id = '${revoked}';`)
      await call(`tiktok_disconnect('${cleared}', true)`)

      const batch = async (limit: string) =>
        (
          await svc(`select b.user_id || '|' || b.access_token || '|' || (b.connected_at = c.connected_at)
                      from public.tiktok_sweep_batch(${limit}) with ordinality b(user_id, connected_at, access_token, n)
                      join public.tiktok_connections c on c.user_id = b.user_id order by b.n`)
        )
          .split('\n')
          .filter(Boolean)
      expect(await batch('3')).toEqual([`${never1}|tok-n1|true`, `${never2}|tok-n2|true`, `${old}|tok-old|true`])
      // Leased: taken ones are now the most recently verified, so the next run gets the rest.
      expect(await batch('3')).toEqual([`${recent}|tok-recent|true`, `${never1}|tok-n1|true`, `${never2}|tok-n2|true`])
      expect(await svc(`select count(*) from public.tiktok_sweep_batch(100)`)).toBe('4')
      expect(await svc(`select count(*) from public.tiktok_sweep_batch(0)`)).toBe('0')
      expect(await svc(`select count(*) from public.tiktok_sweep_batch(-5)`)).toBe('0')
      expect(await svc(`select count(*) from public.tiktok_sweep_batch(null)`)).toBe('0')
      // A revoked connection is never handed out, nor leased; a disconnected one has no row.
      expect(await sql(`select count(*) from public.tiktok_connections where user_id in ('${revoked}', '${cleared}') and verified_at is not null`)).toBe('0')
      // The query uses the partial index.
      const plan = await sql(`set enable_seqscan = off; explain select user_id from public.tiktok_connections
         where revoked_at is null order by verified_at nulls first, user_id limit 10`)
      expect(plan).toContain('tiktok_connections_sweep')
    })

    it('two overlapping runs take different connections', async () => {
      await sql('update public.tiktok_connections set revoked_at = now() where revoked_at is null')
      const fresh = [await newUser(), await newUser(), await newUser(), await newUser()]
      for (const user of fresh) await connect(user, `tok-${user.slice(-2)}`)
      await sql(`update public.tiktok_connections set verified_at = null where user_id in (${fresh.map((u) => `'${u}'`).join(',')})`)
      // The first run holds its transaction open while the second asks.
      const run = (hold: number) =>
        svc(`begin; select string_agg(user_id::text, ',' order by user_id) from public.tiktok_sweep_batch(2); select pg_sleep(${hold}); commit;`)
      const [first, second] = await Promise.all([run(0.6), new Promise((r) => setTimeout(r, 150)).then(() => run(0))])
      const a = first.split('\n')[0]!.split(',')
      const b = second.split('\n')[0]!.split(',')
      expect(a).toEqual(fresh.slice(0, 2))
      expect(b).toEqual(fresh.slice(2, 4))
    })
  })

  describe('delivery', () => {
    it('re-enqueue list, fetch, failure, delivery, and prune', async () => {
      const user = await newUser()
      const { connected_at } = await connect(user, 'secret-deliver')
      await call(`tiktok_choose_advertiser('${user}', '${BIG_B}', '${connected_at}')`)
      await call(`tiktok_disconnect('${user}', true)`)
      const ids = (await events(user)).map((e) => e.id)
      expect(ids).toHaveLength(3)
      const [e1, e2, e3] = ids as [string, string, string]
      // Only this test's events matter from here.
      await sql(`update ${EVENTS} set delivered_at = now() where user_id <> '${user}' and delivered_at is null`)
      await sql(`
        update ${EVENTS} set created_at = now() - interval '3 hours' where id = '${e1}';
        update ${EVENTS} set created_at = now() - interval '2 hours' where id = '${e2}';`)

      const due = async (olderThan: string, limit: number) =>
        (await svc(`select string_agg(id::text || ':' || attempts, ',' order by created_at) from public.tiktok_events_to_deliver('${olderThan}', ${limit})`)) ||
        ''
      // Oldest first; the fresh one is the queue's, not yet the cron's.
      expect(await due('10 minutes', 10)).toBe(`${e1}:0,${e2}:0`)
      expect(await svc(`select string_agg(id::text, ',') from public.tiktok_events_to_deliver('10 minutes', 1)`)).toBe(e1)
      expect(await due('0 seconds', 10)).toBe(`${e1}:0,${e2}:0,${e3}:0`)
      expect(await due('0 seconds', 0)).toBe('')

      const got = JSON.parse(await svc(`select public.tiktok_event_for_delivery('${e2}')`)) as { id: string; type: string; payload: Payload; attempts: number }
      expect(got).toMatchObject({ id: e2, type: 'tiktok.connection.advertiser_changed', attempts: 0 })
      expect(got.payload).toMatchObject({ id: e2, advertiser: B, reason: 'user_choice' })
      expect(JSON.stringify(got)).not.toContain('secret-deliver')

      const failure = await call(`tiktok_record_event_failure('${e2}', ${q(`HTTP 503: ${'x'.repeat(2000)}`)})`)
      expect(failure).toEqual({ outcome: 'ok', attempts: 1 })
      expect((await call(`tiktok_record_event_failure('${e2}', 'timeout')`)).attempts).toBe(2)
      expect(await sql(`select attempts || ':' || last_error from ${EVENTS} where id = '${e2}'`)).toBe('2:timeout')
      await call(`tiktok_record_event_failure('${e2}', ${q(`HTTP 503: ${'x'.repeat(2000)}`)})`)
      expect(await sql(`select length(last_error) from ${EVENTS} where id = '${e2}'`)).toBe('500')

      expect(await call(`tiktok_mark_event_delivered('${e2}')`)).toEqual({ outcome: 'ok' })
      const deliveredAt = await sql(`select delivered_at from ${EVENTS} where id = '${e2}'`)
      expect(await sql(`select attempts from ${EVENTS} where id = '${e2}'`)).toBe('4')
      expect(await call(`tiktok_mark_event_delivered('${e2}')`)).toEqual({ outcome: 'already_delivered' })
      expect(await sql(`select delivered_at from ${EVENTS} where id = '${e2}'`)).toBe(deliveredAt)
      // A late failure report never un-delivers it, nor counts.
      expect(await call(`tiktok_record_event_failure('${e2}', 'late')`)).toEqual({ outcome: 'already_delivered', attempts: null })
      expect(await sql(`select attempts || ':' || (delivered_at is not null) from ${EVENTS} where id = '${e2}'`)).toBe('4:true')
      // Delivered: gone from both the cron's list and the consumer's fetch.
      expect(await svc(`select public.tiktok_event_for_delivery('${e2}') is null`)).toBe('t')
      expect(await due('0 seconds', 10)).toBe(`${e1}:0,${e3}:0`)

      const unknown = '00000000-0000-4000-8000-000000000000'
      expect(await svc(`select public.tiktok_event_for_delivery('${unknown}') is null`)).toBe('t')
      expect(await call(`tiktok_mark_event_delivered('${unknown}')`)).toEqual({ outcome: 'not_found' })
      expect(await call(`tiktok_record_event_failure('${unknown}', 'x')`)).toEqual({ outcome: 'not_found', attempts: null })

      // Prune: delivered and older than the window only.
      await call(`tiktok_mark_event_delivered('${e1}')`)
      await call(`tiktok_mark_event_delivered('${e3}')`)
      await sql(`
        update ${EVENTS} set created_at = now() - interval '40 days' where id in ('${e1}', '${e2}');
        update ${EVENTS} set created_at = now() - interval '40 days', delivered_at = null where id = '${e3}';`)
      const before = Number(await sql(`select count(*) from ${EVENTS}`))
      const pruned = Number(await svc('select public.tiktok_prune_events()'))
      expect(await sql(`select string_agg(id::text, ',') from ${EVENTS} where user_id = '${user}'`)).toBe(e3)
      expect(pruned).toBe(2)
      expect(Number(await sql(`select count(*) from ${EVENTS}`))).toBe(before - pruned)
      // Every other event is delivered and recent: kept by the default window, removed by a short one.
      expect(await svc("select public.tiktok_prune_events('30 days')")).toBe('0')
      const recentDelivered = await sql(`select count(*) from ${EVENTS} where delivered_at is not null`)
      expect(Number(recentDelivered)).toBeGreaterThan(0)
      expect(await svc("select public.tiktok_prune_events('-1 second')")).toBe(recentDelivered)
      expect(await sql(`select count(*) from ${EVENTS}`)).toBe('1')
    })
  })

  it("deleting a Supabase user erases its events (the payloads are the user's)", async () => {
    const user = await newUser()
    await connect(user, 't')
    expect(await events(user)).toHaveLength(1)
    await sql(`delete from auth.users where id = '${user}'`)
    expect(await sql(`select count(*) from ${EVENTS} where user_id = '${user}'`)).toBe('0')
  })

  it('applied again on top of all this, the set changes nothing', async () => {
    const count = await sql(`select count(*) from ${EVENTS}`)
    await sql(inOneTransaction(MIGRATION))
    expect(await sql(`select count(*) from ${EVENTS}`)).toBe(count)
    // The completion is this file's again, writing events.
    const user = await newUser()
    const answer = await connect(user, 't')
    expect(answer.event_id).toMatch(/^[0-9a-f-]{36}$/)
  })
})
