import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Postgres, startPostgres } from './postgres.ts'

const MIGRATIONS = join(import.meta.dirname, '../migrations')
const migration = readdirSync(MIGRATIONS)
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((f) => readFileSync(join(MIGRATIONS, f), 'utf8'))
  .join('\n')

const ALICE = '11111111-1111-4111-8111-111111111111'
const BOB = '22222222-2222-4222-8222-222222222222'

// The product's database before the migration, as Supabase sets one up: the three API roles, and
// default privileges that grant them every table.
const SEED = `
create role anon nologin;
create role authenticated nologin;
create role service_role nologin bypassrls;
create table public.user_accounts (id uuid primary key, email text, display_name text, tiktok_access_token text, tiktok_business_id text, tiktok_account_id text);
grant all on public.user_accounts to anon, authenticated, service_role;
insert into public.user_accounts (id, email) values ('${ALICE}', 'alice@example.com'), ('${BOB}', 'bob@example.com');
`

let pg: Postgres
beforeAll(async () => {
  pg = startPostgres()
  await pg.sql(SEED)
})
afterAll(() => pg?.stop())

const as = (role: string, statement: string) => pg.sql(`set role ${role}; ${statement}`)

describe('supabase/migrations on PostgreSQL 15', () => {
  it('applies twice without error', async () => {
    await pg.sql(migration)
    await pg.sql(migration)
    const columns = await pg.sql(
      "select string_agg(column_name, ',' order by column_name) from information_schema.columns where table_name = 'user_accounts' and column_name like 'tiktok%'",
    )
    expect(columns.split(',')).toEqual([
      'tiktok_access_token',
      'tiktok_account_id',
      'tiktok_advertisers',
      'tiktok_business_id',
      'tiktok_connected_at',
      'tiktok_revoked_at',
    ])
  })

  it('hides the token from authenticated and anon, keeps the other columns readable', async () => {
    await expect(as('authenticated', 'select tiktok_access_token from public.user_accounts')).rejects.toThrow(/permission denied/)
    await expect(as('anon', 'select tiktok_access_token from public.user_accounts')).rejects.toThrow(/permission denied/)
    await expect(as('authenticated', 'select * from public.user_accounts')).rejects.toThrow(/permission denied/)
    const visible = await as('authenticated', `select email, tiktok_business_id, tiktok_advertisers from public.user_accounts where id = '${ALICE}'`)
    expect(visible).toBe('alice@example.com||')
  })

  it('lets authenticated update its own columns but not the TikTok ones', async () => {
    await as('authenticated', `update public.user_accounts set display_name = 'Alice' where id = '${ALICE}'`)
    await expect(as('authenticated', `update public.user_accounts set tiktok_access_token = 'x' where id = '${ALICE}'`)).rejects.toThrow(/permission denied/)
    await expect(as('authenticated', `update public.user_accounts set tiktok_business_id = '1' where id = '${ALICE}'`)).rejects.toThrow(/permission denied/)
  })

  it('keeps the exchanges table and the completion function away from browser roles', async () => {
    await expect(as('authenticated', 'select * from public.tiktok_oauth_exchanges')).rejects.toThrow(/permission denied/)
    await expect(
      as('anon', `select public.tiktok_complete_exchange('n', '${ALICE}', 't', '1', 'a', '[]', '{}')`),
    ).rejects.toThrow(/permission denied/)
  })

  it('lets the service role claim, complete and read the token', async () => {
    await as('service_role', `insert into public.tiktok_oauth_exchanges (state_nonce, user_id, code_hash, claimed_by) values ('nonce-1', '${ALICE}', 'h', 'r1')`)
    const done = await as(
      'service_role',
      `select public.tiktok_complete_exchange('nonce-1', '${ALICE}', 'tok-1', '7012345678901234567', 'Brand A', '[{"id":"7012345678901234567","name":"Brand A"}]', '{"business_id":"7012345678901234567"}')`,
    )
    expect(done).toBe('ok')
    expect(await as('service_role', `select tiktok_access_token || '|' || tiktok_business_id from public.user_accounts where id = '${ALICE}'`)).toBe(
      'tok-1|7012345678901234567',
    )
    expect(await as('service_role', "select status from public.tiktok_oauth_exchanges where state_nonce = 'nonce-1'")).toBe('done')
    // A finished claim cannot be completed again.
    expect(await as('service_role', `select public.tiktok_complete_exchange('nonce-1', '${ALICE}', 'tok-2', '1', 'x', '[]', '{}')`)).toBe('claim_lost')
    expect(await as('service_role', `select tiktok_access_token from public.user_accounts where id = '${ALICE}'`)).toBe('tok-1')
  })

  it('refuses a claim for a user without a row', async () => {
    await expect(
      as('service_role', `insert into public.tiktok_oauth_exchanges (state_nonce, user_id, code_hash, claimed_by) values ('nonce-x', '33333333-3333-4333-8333-333333333333', 'h', 'r')`),
    ).rejects.toThrow(/foreign key/)
  })

  it('lets exactly one of two concurrent writers claim a state', async () => {
    // The first writer holds its insert open while the second arrives: the second must wait, then
    // find the key taken (PostgREST's resolution=ignore-duplicates is ON CONFLICT DO NOTHING).
    const claim = (by: string, hold: number) =>
      as(
        'service_role',
        `begin;
         insert into public.tiktok_oauth_exchanges (state_nonce, user_id, code_hash, claimed_by)
           values ('nonce-race', '${BOB}', 'h', '${by}') on conflict (state_nonce) do nothing returning claimed_by;
         select pg_sleep(${hold});
         commit;`,
      )
    const results = await Promise.all([claim('first', 0.5), new Promise((r) => setTimeout(r, 100)).then(() => claim('second', 0))])
    const winners = results.map((out) => out.split('\n').filter((line) => line === 'first' || line === 'second')).flat()
    expect(winners).toEqual(['first'])
    expect(await as('service_role', "select count(*) from public.tiktok_oauth_exchanges where state_nonce = 'nonce-race'")).toBe('1')
  })
})
