// supabase/compat/user_accounts.sql on PostgreSQL 15: the three columns kept in step for products
// built like the original integration, and the review's variants of a product's grants, each of
// which must end with the token unreadable and no tiktok_ column writable by a browser role, or
// with the file refusing (and leaving nothing behind).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { catalog } from './catalog.ts'
import type { Postgres } from './postgres.ts'
import { ALICE, BOB, COMPAT, type Database, inOneTransaction, project, startCluster } from './seed.ts'

const BIG_A = '7012345678901234567'
const BIG_B = '7012345678901234599'
const ADVERTISERS = [
  { id: BIG_A, name: 'Brand A' },
  { id: BIG_B, name: 'Brand B' },
]

let pg: Postgres
let databases = 0
beforeAll(async () => {
  pg = await startCluster()
})
afterAll(() => pg?.stop())

/**
 * A migrated project whose product has user_accounts as the original integration left it: the
 * three tiktok_ columns, own-row policies, and the browser roles' grants made per column so the
 * token is hidden and no tiktok_ column is writable. `grants` then changes them, as a variant does.
 */
async function originalIntegration(grants = ''): Promise<Database & { name: string }> {
  const name = `compat_${++databases}`
  const db = { ...(await project(pg, name)), name }
  await db.sql(`
    create table public.user_accounts (
      id uuid primary key references auth.users (id) on delete cascade, email text, display_name text,
      tiktok_access_token text, tiktok_business_id text, tiktok_account_id text);
    revoke all on public.user_accounts from anon, authenticated;
    grant select (id, email, display_name, tiktok_business_id, tiktok_account_id), insert (id, email, display_name), update (email, display_name)
      on public.user_accounts to authenticated;
    alter table public.user_accounts enable row level security;
    create policy own_row on public.user_accounts for all to authenticated using (id = auth.uid()) with check (id = auth.uid());
    insert into public.user_accounts (id, email) values ('${ALICE}', 'alice@example.com');
    ${grants}`)
  return db
}

const connect = async (db: Database, user: string, token: string) => {
  const nonce = crypto.randomUUID()
  await db.as('service_role', `select public.tiktok_claim_exchange('${nonce}', '${user}', 'h', 'r')`)
  const done = await db.as(
    'service_role',
    `select public.tiktok_complete_exchange('${nonce}', '${user}', 'r', '${token}', '${BIG_A}', '${JSON.stringify(ADVERTISERS)}', '/') ->> 'connected_at'`,
  )
  return done
}
const columns = (db: Database, user = ALICE) =>
  db.sql(
    `select concat_ws('|', coalesce(tiktok_access_token, 'null'), coalesce(tiktok_business_id, 'null'), coalesce(tiktok_account_id, 'null')) from public.user_accounts where id = '${user}'`,
  )

/** What each browser role may do with the tiktok_ columns, as PostgreSQL reports it (directly, through PUBLIC, or inherited). */
const holes = (db: Database) =>
  db.sql(`select coalesce(string_agg(r || ':' || p || ':' || column_name, ',' order by r, p, column_name), '')
            from unnest(array['anon', 'authenticated']) r, unnest(array['SELECT', 'INSERT', 'UPDATE']) p, information_schema.columns
           where table_schema = 'public' and table_name = 'user_accounts' and column_name like 'tiktok\\_%'
             and (column_name = 'tiktok_access_token' or p <> 'SELECT')
             and has_column_privilege(r, 'public.user_accounts', column_name, p)`)

/** The file refused: nothing of it is left (no trigger, no function, the table's grants as they were). */
async function expectRefused(db: Database, message: RegExp) {
  const before = await db.sql(catalog('product'))
  await expect(db.sql(inOneTransaction(COMPAT))).rejects.toThrow(message)
  expect(await db.sql(catalog('product'))).toBe(before)
  expect(await db.sql("select count(*) from pg_trigger where tgname = 'tiktok_compat_user_accounts'")).toBe('0')
  expect(await db.sql("select to_regprocedure('public.tiktok_compat_user_accounts()') is null")).toBe('t')
}

describe('supabase/compat/user_accounts.sql on PostgreSQL 15', () => {
  it('keeps tiktok_access_token (as stored), tiktok_business_id and tiktok_account_id in step with the connection, from the first one stored before it', async () => {
    const db = await originalIntegration()
    // Stored before the file: copied when it is applied.
    await connect(db, ALICE, 'enc:v1:k1:aaaaaaaaaaaaaaaa:sealed-token')
    await db.sql(inOneTransaction(COMPAT))
    expect(await columns(db)).toBe(`enc:v1:k1:aaaaaaaaaaaaaaaa:sealed-token|${BIG_A}|Brand A`)

    const connectedAt = await connect(db, ALICE, 'tok-2')
    expect(await columns(db)).toBe(`tok-2|${BIG_A}|Brand A`)
    await db.as('service_role', `select public.tiktok_choose_advertiser('${ALICE}', '${BIG_B}', '${connectedAt}')`)
    expect(await columns(db)).toBe(`tok-2|${BIG_B}|Brand B`)
    // The sweep found the chosen one gone: no advertiser, the token still live.
    await db.as('service_role', `select public.tiktok_record_verification('${ALICE}', '${connectedAt}', '${JSON.stringify([ADVERTISERS[0]])}')`)
    expect(await columns(db)).toBe('tok-2|null|null')
    await db.as('service_role', `select public.tiktok_mark_revoked('${ALICE}', 'sweep', 40105, '${connectedAt}')`)
    expect(await columns(db)).toBe('null|null|null')
    await connect(db, ALICE, 'tok-3')
    expect(await columns(db)).toBe(`tok-3|${BIG_A}|Brand A`)
    await db.as('service_role', `select public.tiktok_disconnect('${ALICE}', true)`)
    expect(await columns(db)).toBe('null|null|null')

    // A user the product has no user_accounts row for still connects; nothing is copied anywhere.
    await connect(db, BOB, 'tok-bob')
    expect(await db.sql(`select count(*) from public.user_accounts where tiktok_access_token is not null`)).toBe('0')
  })

  it('leaves the browser roles what they had and nothing more: the token unreadable, no tiktok_ column writable, select of the listed columns as before', async () => {
    const db = await originalIntegration()
    await db.sql(inOneTransaction(COMPAT))
    await connect(db, ALICE, 'tok-alice')
    expect(await holes(db)).toBe('')
    expect(await db.as('authenticated', 'select email, tiktok_business_id, tiktok_account_id from public.user_accounts')).toBe(
      `alice@example.com|${BIG_A}|Brand A`,
    )
    await expect(db.as('authenticated', 'select tiktok_access_token from public.user_accounts')).rejects.toThrow(/permission denied/)
    await expect(db.as('authenticated', `update public.user_accounts set tiktok_business_id = '${BIG_B}'`)).rejects.toThrow(/permission denied/)
    await expect(db.as('authenticated', `update public.user_accounts set tiktok_access_token = 'planted'`)).rejects.toThrow(/permission denied/)
    await db.as('authenticated', `update public.user_accounts set display_name = 'Alice'`)
    // The trigger function is no one's to call.
    expect(
      await db.sql(
        "select has_function_privilege('authenticated', 'public.tiktok_compat_user_accounts()', 'EXECUTE') or has_function_privilege('anon', 'public.tiktok_compat_user_accounts()', 'EXECUTE')",
      ),
    ).toBe('f')
  })

  it('applied again, it changes nothing', async () => {
    const db = await originalIntegration()
    await connect(db, ALICE, 'tok-alice')
    await db.sql(inOneTransaction(COMPAT))
    const product = await db.sql(catalog('product'))
    const connector = await db.sql(catalog('connector'))
    await db.sql(inOneTransaction(COMPAT))
    expect(await db.sql(catalog('product'))).toBe(product)
    expect(await db.sql(catalog('connector'))).toBe(connector)
  })

  it('the per-column-grant variant: column grants that open the token or a tiktok_ column are revoked, and the file finishes', async () => {
    const db = await originalIntegration(`
      grant select (tiktok_access_token), references (tiktok_access_token), update (tiktok_business_id, tiktok_account_id), insert (tiktok_access_token)
        on public.user_accounts to authenticated;
      grant select (tiktok_access_token), update (tiktok_access_token) on public.user_accounts to anon;`)
    expect(await holes(db)).not.toBe('')
    await db.sql(inOneTransaction(COMPAT))
    expect(await holes(db)).toBe('')
    expect(await db.sql("select has_column_privilege('authenticated', 'public.user_accounts', 'tiktok_access_token', 'REFERENCES')")).toBe('f')
    // Reading the advertiser columns stays the product's call.
    expect(await db.sql("select has_column_privilege('authenticated', 'public.user_accounts', 'tiktok_business_id', 'SELECT')")).toBe('t')
    await connect(db, ALICE, 'tok-alice')
    await expect(db.as('authenticated', 'select tiktok_access_token from public.user_accounts')).rejects.toThrow(/permission denied/)
    await expect(db.as('authenticated', `update public.user_accounts set tiktok_account_id = 'x'`)).rejects.toThrow(/permission denied/)
  })

  it('the PUBLIC-grant variant: refuses, naming the grant, and leaves nothing behind', async () => {
    const db = await originalIntegration('grant select (tiktok_access_token) on public.user_accounts to public;')
    await expectRefused(db, /anon may SELECT public\.user_accounts\.tiktok_access_token \(granted to PUBLIC\)/)
    const update = await originalIntegration('grant update on public.user_accounts to public;')
    await expectRefused(update, /anon may UPDATE public\.user_accounts\.tiktok_access_token \(granted to PUBLIC\)/)
  })

  it('the inherited-role variant: refuses, naming the role, whether the browser role inherits it or may only SET ROLE to it', async () => {
    await pg.sql('create role product_staff nologin')
    let db: (Database & { name: string }) | undefined
    try {
      db = await originalIntegration('grant select, update on public.user_accounts to product_staff; grant product_staff to authenticated;')
      // Supabase's authenticated is NOINHERIT: PostgreSQL reports no privilege of its own, yet it may SET ROLE.
      expect(await holes(db)).toBe('')
      await expectRefused(db, /authenticated may SELECT public\.user_accounts\.tiktok_access_token \(as product_staff, a role authenticated is a member of\)/)
      await pg.sql('alter role authenticated inherit')
      try {
        expect(await holes(db)).toContain('authenticated:SELECT:tiktok_access_token')
        await expectRefused(db, /authenticated may SELECT public\.user_accounts\.tiktok_access_token/)
      } finally {
        await pg.sql('alter role authenticated noinherit')
      }
    } finally {
      if (db) await pg.sql(`drop database ${db.name}`)
      await pg.sql('drop role product_staff')
    }
  })

  it("Supabase's default grants (ALL on the table to anon and authenticated): refuses, saying what to change", async () => {
    const db = await originalIntegration('grant all on public.user_accounts to anon, authenticated;')
    await expectRefused(
      db,
      /anon may SELECT public\.user_accounts\.tiktok_access_token \(a table-level grant to anon: replace it with SELECT on the columns it needs, none of them tiktok_ ones\)/,
    )
  })

  it('refuses a project without user_accounts, or before the migration', async () => {
    const bare = await project(pg, 'compat_bare')
    await expect(bare.sql(inOneTransaction(COMPAT))).rejects.toThrow(/public\.user_accounts \(id uuid, the auth user's id\) does not exist/)
    const early = await project(pg, 'compat_early', { migrated: false })
    await expect(early.sql(inOneTransaction(COMPAT))).rejects.toThrow(/apply supabase\/migrations first/)
  })
})
