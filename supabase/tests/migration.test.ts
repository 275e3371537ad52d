import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Postgres, startPostgres } from './postgres.ts'
import { ALICE, BOB, MIGRATION, SEED } from './seed.ts'

const CAROL = '44444444-4444-4444-8444-444444444444'
const DAVE = '55555555-5555-4555-8555-555555555555'

let pg: Postgres
beforeAll(async () => {
  pg = startPostgres()
  await pg.sql(SEED)
})
afterAll(() => pg?.stop())

// Runs a statement as an API role with the JWT subject PostgREST would set (Alice unless told).
const as = (role: string, statement: string, sub = ALICE) => pg.sql(`set role ${role}; set request.jwt.claim.sub = '${sub}'; ${statement}`)

describe('supabase/migrations on PostgreSQL 15', () => {
  it('applies twice without error', async () => {
    await pg.sql(MIGRATION)
    await pg.sql(MIGRATION)
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
      'tiktok_verified_at',
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

  it('authenticated cannot insert a row with a planted tiktok_access_token / business id / connected_at', async () => {
    // The attack as reported: a new user inserts its own row (allowed by the own-row policy) with a
    // connection already in it.
    await expect(
      as(
        'authenticated',
        `insert into public.user_accounts (id, email, tiktok_access_token, tiktok_business_id, tiktok_connected_at)
           values ('${CAROL}', 'carol@example.com', 'planted', '7000000000000000001', now())`,
        CAROL,
      ),
    ).rejects.toThrow(/permission denied/)
    // Each tiktok_ column on its own, for both browser roles.
    const planted: Record<string, string> = {
      tiktok_access_token: "'planted'",
      tiktok_business_id: "'7000000000000000001'",
      tiktok_account_id: "'acct'",
      tiktok_advertisers: `'[{"id":"7000000000000000001","name":"x"}]'`,
      tiktok_connected_at: 'now()',
      tiktok_revoked_at: 'now()',
    }
    for (const [column, value] of Object.entries(planted)) {
      for (const role of ['authenticated', 'anon']) {
        await expect(
          as(role, `insert into public.user_accounts (id, email, ${column}) values ('${CAROL}', 'carol@example.com', ${value})`, CAROL),
          `${role} inserting ${column}`,
        ).rejects.toThrow(/permission denied for table user_accounts/)
      }
    }
    expect(await as('service_role', `select count(*) from public.user_accounts where id = '${CAROL}'`)).toBe('0')
    // No tiktok_ column is insertable or referenceable by either role, however the privilege is held.
    const holes = await pg.sql(
      `select string_agg(r || ':' || p || ':' || column_name, ',')
         from unnest(array['anon', 'authenticated']) r, unnest(array['INSERT', 'REFERENCES']) p, information_schema.columns
        where table_schema = 'public' and table_name = 'user_accounts' and column_name like 'tiktok\\_%'
          and has_column_privilege(r, 'public.user_accounts', column_name, p)`,
    )
    expect(holes).toBe('')
    expect(await pg.sql("select has_table_privilege('authenticated', 'public.user_accounts', 'INSERT')")).toBe('f')
  })

  it('authenticated can still insert its own row with only non-tiktok columns', async () => {
    await as('authenticated', `insert into public.user_accounts (id, email) values ('${CAROL}', 'carol@example.com')`, CAROL)
    expect(await as('authenticated', `select id || '|' || email || '|' || coalesce(tiktok_connected_at::text, 'null') from public.user_accounts`, CAROL)).toBe(
      `${CAROL}|carol@example.com|null`,
    )
    expect(await as('service_role', `select coalesce(tiktok_access_token, 'null') from public.user_accounts where id = '${CAROL}'`)).toBe('null')
    // The seed's own-row policy is in force: another user's id is refused by RLS, not by grants.
    await expect(as('authenticated', `insert into public.user_accounts (id, email) values ('${DAVE}', 'dave@example.com')`, CAROL)).rejects.toThrow(
      /row-level security/,
    )
  })

  it('a tiktok_ column added by a later migration stays closed to authenticated and anon', async () => {
    await pg.sql('alter table public.user_accounts add column tiktok_refresh_token text')
    try {
      for (const role of ['authenticated', 'anon']) {
        await expect(
          as(role, `insert into public.user_accounts (id, email, tiktok_refresh_token) values ('${DAVE}', 'dave@example.com', 'planted')`, DAVE),
        ).rejects.toThrow(/permission denied/)
        await expect(as(role, 'select tiktok_refresh_token from public.user_accounts')).rejects.toThrow(/permission denied/)
        await expect(as(role, `update public.user_accounts set tiktok_refresh_token = 'x' where id = '${ALICE}'`)).rejects.toThrow(/permission denied/)
      }
      // Applying the migrations again, with the new column present and tiktok_ grants made by hand,
      // closes everything again.
      await pg.sql('grant insert (tiktok_business_id, tiktok_refresh_token), references (tiktok_access_token) on public.user_accounts to authenticated')
      await pg.sql(MIGRATION)
      const holes = await pg.sql(
        `select string_agg(p || ':' || column_name, ',') from unnest(array['INSERT', 'REFERENCES']) p, information_schema.columns
          where table_schema = 'public' and table_name = 'user_accounts' and column_name like 'tiktok\\_%'
            and has_column_privilege('authenticated', 'public.user_accounts', column_name, p)`,
      )
      expect(holes).toBe('')
      await expect(
        as('authenticated', `insert into public.user_accounts (id, email, tiktok_refresh_token) values ('${DAVE}', 'dave@example.com', 'planted')`, DAVE),
      ).rejects.toThrow(/permission denied/)
      await expect(as('authenticated', 'select tiktok_refresh_token from public.user_accounts')).rejects.toThrow(/permission denied/)
    } finally {
      await pg.sql('alter table public.user_accounts drop column tiktok_refresh_token')
    }
  })

  it('the migration refuses to leave INSERT on tiktok_ columns open through a PUBLIC grant', async () => {
    await pg.sql('grant insert on public.user_accounts to public')
    try {
      await expect(pg.sql(MIGRATION)).rejects.toThrow(/anon still holds INSERT on public.user_accounts.tiktok_/)
    } finally {
      await pg.sql('revoke insert on public.user_accounts from public')
      // The failed run stopped part-way; the tests after this one need every migration applied.
      await pg.sql(MIGRATION)
    }
  })

  it('keeps the exchanges table and the claim functions away from browser roles', async () => {
    await expect(as('authenticated', 'select * from public.tiktok_oauth_exchanges')).rejects.toThrow(/permission denied/)
    for (const call of [
      `public.tiktok_claim_exchange('n', '${ALICE}', 'h', 'r')`,
      `public.tiktok_release_exchange('n', 'r')`,
      `public.tiktok_complete_exchange('n', '${ALICE}', 'r', 't', '{}')`,
      `public.tiktok_connection_summary('${ALICE}')`,
    ]) {
      await expect(as('anon', `select ${call}`)).rejects.toThrow(/permission denied/)
      await expect(as('authenticated', `select ${call}`)).rejects.toThrow(/permission denied/)
    }
    // The seven-argument completion of the first migration is gone.
    expect(await pg.sql("select string_agg(oid::regprocedure::text, ' ') from pg_proc where proname = 'tiktok_complete_exchange'")).toBe(
      'tiktok_complete_exchange(text,uuid,text,text,jsonb)',
    )
  })

  const claim = (nonce: string, code: string, by: string, user = ALICE) =>
    as('service_role', `select public.tiktok_claim_exchange('${nonce}', '${user}', '${code}', '${by}') ->> 'outcome'`)
  const release = (nonce: string, by: string) => as('service_role', `select public.tiktok_release_exchange('${nonce}', '${by}') ->> 'outcome'`)
  const RESULT = `'{"business_id":"7012345678901234567","account_id":"Brand A","advertisers":[{"id":"7012345678901234567","name":"Brand A"},{"id":"7012345678901234599","name":"Brand B"}],"return_to":"/profile"}'`

  it('lets the service role claim, complete and read the token; a replay answers what is stored now', async () => {
    expect(await claim('nonce-1', 'h', 'r1')).toBe('claimed')
    const done = await as('service_role', `select public.tiktok_complete_exchange('nonce-1', '${ALICE}', 'r1', 'tok-1', ${RESULT})`)
    const answer = JSON.parse(done) as { outcome: string; connected_at: string }
    expect(answer.outcome).toBe('ok')
    expect(
      await as('service_role', `select tiktok_access_token || '|' || tiktok_business_id || '|' || (tiktok_connected_at = '${answer.connected_at}'::timestamptz) from public.user_accounts where id = '${ALICE}'`),
    ).toBe('tok-1|7012345678901234567|true')
    expect(await as('service_role', "select status || ' ' || result::text from public.tiktok_oauth_exchanges where state_nonce = 'nonce-1'")).toBe(
      'done {"return_to": "/profile"}',
    )
    // A finished claim cannot be completed again.
    expect(await as('service_role', `select public.tiktok_complete_exchange('nonce-1', '${ALICE}', 'r1', 'tok-2', ${RESULT}) ->> 'outcome'`)).toBe('claim_lost')
    expect(await as('service_role', `select tiktok_access_token from public.user_accounts where id = '${ALICE}'`)).toBe('tok-1')

    // item 7: the same code again is a replay of what is stored now, not of the first answer.
    await as('service_role', `update public.user_accounts set tiktok_business_id = '7012345678901234599', tiktok_account_id = 'Brand B' where id = '${ALICE}'`)
    const replay = JSON.parse(await as('service_role', `select public.tiktok_claim_exchange('nonce-1', '${ALICE}', 'h', 'r2')`))
    expect(replay).toEqual({
      outcome: 'done',
      return_to: '/profile',
      connection: {
        business_id: '7012345678901234599',
        account_id: 'Brand B',
        advertisers: JSON.parse(RESULT.slice(1, -1)).advertisers,
        connected_at: answer.connected_at,
      },
    })
    expect(await claim('nonce-1', 'other-code', 'r3')).toBe('used')
    expect(await claim('nonce-1', 'h', 'r4', BOB)).toBe('used')
  })

  it('counts failed attempts with the claim and locks the state after five', async () => {
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect(await claim('nonce-lock', `code-${attempt}`, `r${attempt}`)).toBe('claimed')
      // A second request with the same code while the first is in flight waits; another code is refused.
      expect(await claim('nonce-lock', `code-${attempt}`, `twin${attempt}`)).toBe('pending')
      expect(await claim('nonce-lock', 'another', `x${attempt}`)).toBe('used')
      expect(await release('nonce-lock', `r${attempt}`)).toBe('released')
      // Repeating a release does not count twice; another request's release touches nothing.
      expect(await release('nonce-lock', `r${attempt}`)).toBe('released')
      expect(await release('nonce-lock', 'not-mine')).toBe('gone')
    }
    expect(await as('service_role', "select failed_attempts from public.tiktok_oauth_exchanges where state_nonce = 'nonce-lock'")).toBe('5')
    expect(await claim('nonce-lock', 'code-6', 'r6')).toBe('locked')
    expect(await as('service_role', "select status from public.tiktok_oauth_exchanges where state_nonce = 'nonce-lock'")).toBe('released')
  })

  it('a release after the completion committed answers done, and the completion after a release cannot commit', async () => {
    expect(await claim('nonce-2', 'h', 'r1', BOB)).toBe('claimed')
    expect(JSON.parse(await as('service_role', `select public.tiktok_complete_exchange('nonce-2', '${BOB}', 'r1', 'tok-b', ${RESULT})`)).outcome).toBe('ok')
    expect(await release('nonce-2', 'r1')).toBe('done')

    expect(await claim('nonce-3', 'h', 'r1', BOB)).toBe('claimed')
    expect(await release('nonce-3', 'r1')).toBe('released')
    const complete = (by: string, token: string) =>
      as('service_role', `select public.tiktok_complete_exchange('nonce-3', '${BOB}', '${by}', '${token}', ${RESULT}) ->> 'outcome'`)
    expect(await complete('r1', 'tok-late')).toBe('claim_lost')
    // Review H1: a retry re-claims the state; the first request's late completion still cannot
    // commit under the retry's claim (its token was revoked when it released).
    expect(await claim('nonce-3', 'h2', 'r2', BOB)).toBe('claimed')
    expect(await complete('r1', 'tok-late')).toBe('claim_lost')
    expect(await as('service_role', `select tiktok_access_token from public.user_accounts where id = '${BOB}'`)).toBe('tok-b')
    expect(await complete('r2', 'tok-retry')).toBe('ok')
    expect(await as('service_role', `select tiktok_access_token from public.user_accounts where id = '${BOB}'`)).toBe('tok-retry')
  })

  it('a claim left pending for two minutes (a cancelled request) counts as a failure and can be taken over', async () => {
    expect(await claim('nonce-stale', 'h', 'gone', BOB)).toBe('claimed')
    expect(await claim('nonce-stale', 'h', 'twin', BOB)).toBe('pending')
    await as('service_role', "update public.tiktok_oauth_exchanges set claimed_at = now() - interval '3 minutes' where state_nonce = 'nonce-stale'")
    expect(await claim('nonce-stale', 'h', 'twin', BOB)).toBe('claimed')
    expect(await as('service_role', "select failed_attempts || ' ' || claimed_by from public.tiktok_oauth_exchanges where state_nonce = 'nonce-stale'")).toBe('1 twin')
    // The abandoned request can no longer complete or release.
    expect(await as('service_role', `select public.tiktok_complete_exchange('nonce-stale', '${BOB}', 'gone', 'tok-x', ${RESULT}) ->> 'outcome'`)).toBe('claim_lost')
    expect(await release('nonce-stale', 'gone')).toBe('gone')
  })

  it('refuses a claim for a user without a row', async () => {
    await expect(claim('nonce-x', 'h', 'r', '33333333-3333-4333-8333-333333333333')).rejects.toThrow(/foreign key/)
  })

  it('lets exactly one of two concurrent requests claim a state', async () => {
    // The first holds its transaction open while the second arrives: the second must wait on the
    // primary key, then find the claim taken (the same code: pending).
    const racer = (by: string, hold: number) =>
      as(
        'service_role',
        `begin;
         select public.tiktok_claim_exchange('nonce-race', '${BOB}', 'h', '${by}') ->> 'outcome';
         select pg_sleep(${hold});
         commit;`,
      )
    const results = await Promise.all([racer('first', 0.5), new Promise((r) => setTimeout(r, 100)).then(() => racer('second', 0))])
    expect(results.map((out) => out.split('\n')[0])).toEqual(['claimed', 'pending'])
    expect(await as('service_role', "select claimed_by from public.tiktok_oauth_exchanges where state_nonce = 'nonce-race'")).toBe('first')
  })
})
