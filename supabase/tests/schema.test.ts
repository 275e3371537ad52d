import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SCHEMA } from '../../src/schema.ts'
import { catalog } from './catalog.ts'
import type { Postgres } from './postgres.ts'
import { ALICE, BOB, type Database, inOneTransaction, MIGRATION, project, startCluster } from './seed.ts'

const CAROL = '33333333-3333-4333-8333-333333333333'
const ADVERTISERS = `'[{"id":"7012345678901234567","name":"Brand A"},{"id":"7012345678901234599","name":"Brand B"}]'`

let pg: Postgres
let db: Database
beforeAll(async () => {
  pg = await startCluster()
  db = await project(pg, 'migrated')
})
afterAll(() => pg?.stop())

/** Claim and complete for `user`, as the Worker does. */
async function connect(on: Database, user: string, token: string, nonce = `nonce-${user}-${token}`) {
  expect(await on.as('service_role', `select public.tiktok_claim_exchange('${nonce}', '${user}', 'h', 'r') ->> 'outcome'`)).toBe('claimed')
  const done = await on.as(
    'service_role',
    `select public.tiktok_complete_exchange('${nonce}', '${user}', 'r', '${token}', '7012345678901234567', ${ADVERTISERS}, '/profile') ->> 'outcome'`,
  )
  expect(done).toBe('ok')
}

const FUNCTIONS = [
  'tiktok_advertiser_list(jsonb)',
  'tiktok_choose_advertiser(uuid,text,timestamp with time zone)',
  'tiktok_claim_exchange(text,uuid,text,text)',
  'tiktok_complete_exchange(text,uuid,text,text,text,jsonb,text)',
  'tiktok_connect_schema()',
  'tiktok_connection_summary(uuid)',
  'tiktok_disconnect(uuid,boolean,timestamp with time zone)',
  'tiktok_event_for_delivery(uuid)',
  'tiktok_events_to_deliver(interval,integer)',
  'tiktok_mark_event_delivered(uuid)',
  'tiktok_mark_revoked(uuid,text,integer,timestamp with time zone)',
  'tiktok_prune_events(interval)',
  'tiktok_record_event_failure(uuid,text)',
  'tiktok_record_use(uuid,timestamp with time zone)',
  'tiktok_record_verification(uuid,timestamp with time zone,jsonb)',
  'tiktok_release_exchange(text,text)',
  'tiktok_sweep_batch(integer)',
  'tiktok_write_event(uuid,text,timestamp with time zone,timestamp with time zone,text,text,jsonb,jsonb)',
]
const TABLES = ['tiktok_connection_events', 'tiktok_connections', 'tiktok_oauth_exchanges']
const STATUS_COLUMNS = ['user_id', 'advertiser_id', 'advertiser_name', 'advertisers', 'connected_at', 'revoked_at', 'verified_at']

describe('the migration on PostgreSQL 15', () => {
  it('applies on a Supabase project that has nothing but auth.users; applied again it changes nothing', async () => {
    const bare = await project(pg, 'bare', { bare: true, migrated: false })
    expect(await bare.sql("select to_regclass('public.user_accounts') is null and to_regclass('public.profiles') is null")).toBe('t')
    await bare.sql(inOneTransaction(MIGRATION))
    const once = await bare.sql(catalog('connector'))
    await bare.sql(inOneTransaction(MIGRATION))
    expect(await bare.sql(catalog('connector'))).toBe(once)
    // What it made: three tables, one view, these functions, and nothing else of its name.
    expect(
      await bare.sql(
        "select string_agg(relname || ':' || relkind::text, ',' order by relname) from pg_class where relname like 'tiktok\\_%' and relkind in ('r', 'v')",
      ),
    ).toBe('tiktok_connection_events:r,tiktok_connection_status:v,tiktok_connections:r,tiktok_oauth_exchanges:r')
    expect(
      (await bare.sql("select string_agg(oid::regprocedure::text, '|' order by oid::regprocedure::text) from pg_proc where proname like 'tiktok\\_%'")).split(
        '|',
      ),
    ).toEqual(FUNCTIONS)
    // A connection lives there like anywhere.
    await connect(bare, ALICE, 'tok-bare')
    expect(await bare.sql(`select access_token from public.tiktok_connections where user_id = '${ALICE}'`)).toBe('tok-bare')
  })

  it("leaves the product's tables as they were: columns, grants, policies, triggers, rows, default privileges, roles", async () => {
    const product = await project(pg, 'untouched', { migrated: false })
    const before = await product.sql(catalog('product'))
    // The snapshot has what it is meant to compare.
    expect(before).toContain('relation profiles kind=r rls=t')
    expect(before).toContain('policy public.profiles own_row_select SELECT roles={authenticated}')
    expect(before).toContain('trigger auth.users CREATE TRIGGER on_auth_user_created')
    expect(before).toContain('column profiles.email text notnull=f default= acl= comment=')
    await product.sql(inOneTransaction(MIGRATION))
    expect(await product.sql(catalog('product'))).toBe(before)
    await connect(product, ALICE, 'tok-1')
    await product.sql(inOneTransaction(MIGRATION))
    // Connecting wrote the connector's tables only: the product's rows are as they were too.
    expect(await product.sql(catalog('product'))).toBe(before)
  })

  it('the status view as authenticated: its own row only, every status column and no token, with select *', async () => {
    await connect(db, ALICE, 'tok-alice')
    await connect(db, BOB, 'tok-bob')
    const mine = JSON.parse(await db.as('authenticated', "select coalesce(json_agg(s), '[]') from public.tiktok_connection_status s")) as Record<
      string,
      unknown
    >[]
    expect(mine).toHaveLength(1)
    expect(Object.keys(mine[0]!)).toEqual(STATUS_COLUMNS)
    expect(mine[0]).toMatchObject({ user_id: ALICE, advertiser_id: '7012345678901234567', advertiser_name: 'Brand A', revoked_at: null })
    expect(JSON.stringify(mine)).not.toContain('tok-')
    expect(await db.as('authenticated', 'select user_id from public.tiktok_connection_status', BOB)).toBe(BOB)
    // Another user's row cannot be asked for either.
    expect(await db.as('authenticated', `select count(*) from public.tiktok_connection_status where user_id = '${BOB}'`)).toBe('0')
    // A user without a connection: no row, which reads as "not connected".
    expect(await db.as('authenticated', 'select count(*) from public.tiktok_connection_status', CAROL)).toBe('0')
    // No session (a JWT without a subject): nothing.
    expect(await db.sql('set role authenticated; select count(*) from public.tiktok_connection_status')).toBe('0')
  })

  it('the status view as anon: nothing', async () => {
    await expect(db.as('anon', 'select * from public.tiktok_connection_status')).rejects.toThrow(/permission denied for view tiktok_connection_status/)
    await expect(db.as('anon', 'select user_id from public.tiktok_connections')).rejects.toThrow(/permission denied/)
  })

  it('every table, the token column and every function are out of reach of anon and authenticated, as PostgreSQL reports it', async () => {
    for (const role of ['anon', 'authenticated']) {
      for (const table of TABLES) {
        for (const privilege of ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'])
          expect(await db.sql(`select has_table_privilege('${role}', 'public.${table}', '${privilege}')`), `${role} ${privilege} ${table}`).toBe('f')
        // The privileges a column can hold on its own.
        for (const privilege of ['INSERT', 'UPDATE', 'REFERENCES'])
          expect(
            await db.sql(`select has_any_column_privilege('${role}', 'public.${table}', '${privilege}')`),
            `${role} ${privilege} a column of ${table}`,
          ).toBe('f')
        // Only the status columns of the connections, only for authenticated (the view reads them as the user).
        const readable = await db.sql(
          `select coalesce(string_agg(attname, ',' order by attnum), '') from pg_attribute where attrelid = 'public.${table}'::regclass and attnum > 0 and has_column_privilege('${role}', attrelid, attname, 'SELECT')`,
        )
        expect(readable, `${role} reads ${table}`).toBe(role === 'authenticated' && table === 'tiktok_connections' ? STATUS_COLUMNS.join(',') : '')
      }
      expect(
        await db.sql(`select has_table_privilege('${role}', 'public.tiktok_connection_status', 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')`),
      ).toBe('f')
      expect(await db.sql(`select has_table_privilege('${role}', 'public.tiktok_connection_status', 'SELECT')`)).toBe(role === 'authenticated' ? 't' : 'f')
      const executable = await db.sql(
        `select coalesce(string_agg(proname, ','), '') from pg_proc where proname like 'tiktok\\_%' and has_function_privilege('${role}', oid, 'EXECUTE')`,
      )
      expect(executable, role).toBe('')
    }
    // PUBLIC holds nothing, and every grant there is the owner's, service_role's or the status view's.
    const grantees = await db.sql(
      `select string_agg(distinct c.relname || ':' || case a.grantee when 0 then 'PUBLIC' else a.grantee::regrole::text end, ',')
         from pg_class c, aclexplode(c.relacl) a where c.relname like 'tiktok\\_%' and c.relkind in ('r', 'v') and a.grantee <> c.relowner`,
    )
    expect(grantees.split(',').sort()).toEqual([
      'tiktok_connection_events:service_role',
      'tiktok_connection_status:authenticated',
      'tiktok_connection_status:service_role',
      'tiktok_connections:service_role',
      'tiktok_oauth_exchanges:service_role',
    ])
    expect(
      await db.sql(
        "select string_agg(distinct case a.grantee when 0 then 'PUBLIC' else a.grantee::regrole::text end, ',') from pg_proc p, aclexplode(p.proacl) a where p.proname like 'tiktok\\_%' and a.grantee <> p.proowner",
      ),
    ).toBe('service_role')
    expect(await db.sql("select bool_and(has_function_privilege('service_role', oid, 'EXECUTE')) from pg_proc where proname like 'tiktok\\_%'")).toBe('t')
    // Every function runs as its caller, with an empty search path.
    expect(
      await db.sql(
        "select string_agg(proname, ',') from pg_proc where proname like 'tiktok\\_%' and (prosecdef or proconfig is distinct from '{\"search_path=\\\"\\\"\"}')",
      ),
    ).toBe('')

    // And tried, as PostgREST would for a browser's token.
    for (const role of ['anon', 'authenticated']) {
      for (const statement of [
        'select access_token from public.tiktok_connections',
        'select * from public.tiktok_connections',
        `insert into public.tiktok_connections (user_id, access_token, advertisers, connected_at) values ('${CAROL}', 'planted', '[]', now())`,
        `update public.tiktok_connections set advertiser_id = '7012345678901234599', advertiser_name = 'Brand B'`,
        'delete from public.tiktok_connections',
        `update public.tiktok_connection_status set advertiser_id = '7012345678901234599'`,
        'select * from public.tiktok_oauth_exchanges',
        'select * from public.tiktok_connection_events',
        `select public.tiktok_choose_advertiser('${ALICE}', '7012345678901234599', now())`,
        `select public.tiktok_mark_revoked('${ALICE}', 'proxy', 40105, now())`,
        'select * from public.tiktok_sweep_batch(10)',
        'select public.tiktok_connect_schema()',
      ])
        await expect(db.as(role, statement), `${role}: ${statement}`).rejects.toThrow(/permission denied/)
    }
  })

  it("a project's own default privileges (to PUBLIC, to a role authenticated may act as) open nothing either", async () => {
    await pg.sql('create role product_reader nologin')
    try {
      const own = await project(pg, 'defaults', { migrated: false })
      await own.sql(`
        alter default privileges in schema public grant select, insert, update on tables to public, product_reader;
        alter default privileges in schema public grant execute on functions to product_reader;
        grant product_reader to authenticated;`)
      await own.sql(inOneTransaction(MIGRATION))
      const held = await own.sql(
        `select coalesce(string_agg(c.relname || ':' || case a.grantee when 0 then 'PUBLIC' else a.grantee::regrole::text end, ','), '')
           from pg_class c, aclexplode(c.relacl) a where c.relname like 'tiktok\\_%' and a.grantee not in (c.relowner, 'service_role'::regrole, 'authenticated'::regrole)`,
      )
      expect(held).toBe('')
      expect(await own.sql("select has_column_privilege('product_reader', 'public.tiktok_connections', 'access_token', 'SELECT')")).toBe('f')
      expect(await own.sql("select count(*) from pg_proc where proname like 'tiktok\\_%' and has_function_privilege('product_reader', oid, 'EXECUTE')")).toBe(
        '0',
      )
      await expect(own.as('product_reader', 'select access_token from public.tiktok_connections')).rejects.toThrow(/permission denied/)
    } finally {
      await pg.sql('drop database defaults')
      await pg.sql('drop role product_reader')
    }
  })

  it('refuses to finish when a browser role may act as a role that reads everything (the owner, pg_read_all_data), and leaves nothing behind', async () => {
    const member = await project(pg, 'owner_member', { migrated: false })
    const nothingLeft = "select to_regclass('public.tiktok_connections') is null and to_regprocedure('public.tiktok_connect_schema()') is null"
    for (const [role, browser] of [
      ['postgres', 'authenticated'],
      ['pg_read_all_data', 'anon'],
    ]) {
      await pg.sql(`grant ${role} to ${browser}`)
      try {
        await expect(member.sql(inOneTransaction(MIGRATION)), role).rejects.toThrow(`${browser} (as ${role}) may read public.tiktok_connections.access_token`)
        expect(await member.sql(nothingLeft)).toBe('t')
      } finally {
        await pg.sql(`revoke ${role} from ${browser}`)
      }
    }
    await member.sql(inOneTransaction(MIGRATION))
    expect(await member.sql(nothingLeft)).toBe('f')
  })

  it('answers its version and file to service_role: the ones this Worker checks, naming a file that exists', async () => {
    expect(JSON.parse(await db.as('service_role', 'select public.tiktok_connect_schema()'))).toEqual({ version: SCHEMA.version, file: SCHEMA.file })
    expect(existsSync(join(import.meta.dirname, '../..', SCHEMA.file))).toBe(true)
  })

  it('keeps every stored row one a reader can trust: advertisers well formed, the chosen one among them, a code only with a revocation', async () => {
    await connect(db, BOB, 'tok-rules', 'nonce-rules')
    const update = (set: string) => db.as('service_role', `update public.tiktok_connections set ${set} where user_id = '${BOB}'`)
    for (const list of [`'"not a list"'`, `'[{"id": 7012345678901234567, "name": "A"}]'`, `'[{"id": "7012x", "name": "A"}]'`, `'[{"id": "1"}]'`, `'[["1"]]'`])
      await expect(update(`advertiser_id = null, advertiser_name = null, advertisers = ${list}`), list).rejects.toThrow(/tiktok_connections_advertisers_shape/)
    await expect(update(`advertiser_id = '7099999999999999999', advertiser_name = 'Elsewhere'`)).rejects.toThrow(/tiktok_connections_chosen_advertiser/)
    await expect(update(`advertiser_name = 'Renamed only here'`)).rejects.toThrow(/tiktok_connections_chosen_advertiser/)
    await expect(update('advertiser_id = null')).rejects.toThrow(/tiktok_connections_chosen_advertiser/)
    await expect(update('revoked_code = 40105')).rejects.toThrow(/tiktok_connections_revoked_code/)
    // Both null is the cleared choice the sweep leaves.
    await update('advertiser_id = null, advertiser_name = null')
    expect(await db.sql(`select advertisers = ${ADVERTISERS}::jsonb and advertiser_id is null from public.tiktok_connections where user_id = '${BOB}'`)).toBe(
      't',
    )
  })

  it('deleting a Supabase user deletes its connection, its claims and its events', async () => {
    await pg.sql(`insert into auth.users (id, email) values ('${CAROL}', 'carol@example.com')`, 'migrated')
    await connect(db, CAROL, 'tok-carol', 'nonce-carol')
    const owned = () =>
      db.sql(`select (select count(*) from public.tiktok_connections where user_id = '${CAROL}') || ',' ||
                     (select count(*) from public.tiktok_oauth_exchanges where user_id = '${CAROL}') || ',' ||
                     (select count(*) from public.tiktok_connection_events where user_id = '${CAROL}')`)
    expect(await owned()).toBe('1,1,1')
    await db.sql(`delete from auth.users where id = '${CAROL}'`)
    expect(await owned()).toBe('0,0,0')
  })
})
