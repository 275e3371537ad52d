// The Worker against a database that does or does not hold its schema: what health reports, what the
// routes answer, and what it costs (one question per isolate while the schema is there). The
// database is this file's own; the tests change its schema with real DDL and apply the real
// migration again.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import MIGRATION from '../supabase/migrations/20261125000000_tiktok_connect.sql?raw'
import { SCHEMA } from '../src/schema'
import { APP_ORIGIN, asUser, call, database, exchange, expectNoLeaks, type Harness, harness, SCHEMA_CHECK, start } from './harness'

let h: Harness
beforeEach(async () => {
  h = await harness()
})
afterEach(async () => {
  await expectNoLeaks(h)
})

const lines = () => h.logs.map((l) => JSON.parse(l) as Record<string, unknown>)
const schemaChecks = () => h.supabase.requests.filter((r) => r.path === SCHEMA_CHECK).length
const health = async (isolate: Record<string, string>) => {
  const response = await call(`${APP_ORIGIN}/api/tiktok/health`, {}, isolate)
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}
/** The schema function as an older (or newer) file would have made it. */
const versioned = (version: number) =>
  database.exec(`create or replace function public.tiktok_connect_schema() returns jsonb language sql immutable security invoker set search_path = ''
                 as $$ select jsonb_build_object('version', ${version}, 'file', 'supabase/migrations/another.sql') $$`)

describe('the schema check', () => {
  it('asks once per isolate while the schema is there: health and the routes after it pay nothing more', async () => {
    const isolate = {}
    expect(await health(isolate)).toMatchObject({ status: 200, body: { ok: true, schema: 'ok', schema_file: SCHEMA.file } })
    expect(await health(isolate)).toMatchObject({ status: 200 })
    expect(await asUser(h, '/api/tiktok/connection', { bindings: isolate })).toMatchObject({ status: 200, body: { connected: false } })
    expect(schemaChecks()).toBe(1)
    // Another isolate asks for itself, once, whichever call comes first.
    const other = {}
    await asUser(h, '/api/tiktok/connection', { bindings: other })
    await health(other)
    expect(schemaChecks()).toBe(2)
    expect(
      lines()
        .filter((l) => l.event === 'supabase.schema')
        .map((l) => [l.outcome, l.version]),
    ).toEqual([
      ['ok', SCHEMA.version],
      ['ok', SCHEMA.version],
    ])
  })

  it('a database the migration never reached: health names the file, every route answers misconfigured (not a storage outage), and applying it needs no redeploy', async () => {
    await database.exec('drop function public.tiktok_connect_schema()')
    const isolate = {}
    expect(await health(isolate)).toEqual({
      status: 503,
      body: { ok: false, missing: [], malformed: [], problems: [], schema: 'missing', schema_file: SCHEMA.file },
    })
    expect(await asUser(h, '/api/tiktok/connection', { bindings: isolate })).toMatchObject({ status: 500, body: { code: 'misconfigured' } })
    const s = await start(h)
    const exchanged = await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, isolate)
    expect(exchanged.status).toBe(500)
    expect(h.tiktok.requests).toEqual([])
    // The schema question, asked again each time, and nothing else reached the database.
    expect(h.supabase.requests.map((r) => r.path)).toEqual([SCHEMA_CHECK, SCHEMA_CHECK, SCHEMA_CHECK])
    expect(lines().find((l) => l.event === 'supabase.schema')).toMatchObject({ level: 'warn', outcome: 'missing', version: null, apply: SCHEMA.file })
    expect(lines().find((l) => l.event === 'oauth.failure')).toMatchObject({ code: 'misconfigured', reason: 'schema_missing', apply: SCHEMA.file })

    await database.exec(MIGRATION)
    expect(await health(isolate)).toMatchObject({ status: 200, body: { ok: true, schema: 'ok' } })
    expect(await asUser(h, '/api/tiktok/connection', { bindings: isolate })).toMatchObject({ status: 200, body: { connected: false } })
  })

  it('an older schema is outdated: health says so and names the file; the exchange stops before TikTok', async () => {
    await versioned(SCHEMA.version - 1)
    const isolate = {}
    expect(await health(isolate)).toMatchObject({ status: 503, body: { ok: false, schema: 'outdated', schema_file: SCHEMA.file } })
    const s = await start(h)
    const r = await exchange({ state: s.state, authCode: h.tiktok.issueCode(), cookie: s.cookie }, isolate)
    expect(r.status).toBe(500)
    expect(await r.json()).toMatchObject({ code: 'misconfigured' })
    expect(h.tiktok.requests).toEqual([])
    expect(lines().find((l) => l.event === 'oauth.failure')).toMatchObject({ reason: 'schema_outdated' })
    await database.exec(MIGRATION)
    expect(await health(isolate)).toMatchObject({ status: 200, body: { schema: 'ok' } })
  })

  it('a newer schema is fine: a later migration is applied before the Workers it serves replace this one', async () => {
    await versioned(SCHEMA.version + 1)
    expect(await health({})).toMatchObject({ status: 200, body: { schema: 'ok' } })
    await database.exec(MIGRATION)
  })

  it('a database that does not answer: health says unknown, the route is a storage outage, and the next unit of work asks again', async () => {
    const isolate = {}
    h.supabase.faults.add('schema', { status: 503 }, 2)
    expect(await health(isolate)).toMatchObject({ status: 503, body: { ok: false, problems: [], schema: 'unknown' } })
    expect(await asUser(h, '/api/tiktok/connection', { bindings: isolate })).toMatchObject({ status: 502, body: { code: 'storage_unavailable' } })
    expect(await health(isolate)).toMatchObject({ status: 200, body: { schema: 'ok' } })
    expect(schemaChecks()).toBe(3)
  })

  it('settings that do not allow asking: unknown, and the database is not called', async () => {
    expect(await health({ SUPABASE_URL: '' })).toMatchObject({ status: 503, body: { missing: ['SUPABASE_URL'], schema: 'unknown' } })
    expect(h.supabase.requests).toEqual([])
  })
})
