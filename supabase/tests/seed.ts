// Shared by the PostgreSQL tests: the databases they start from (the files the sandbox starts from
// too), two users, the migrations as one script, and the opt-in compat file.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { MIGRATIONS_SQL, PRODUCT_SQL, SUPABASE_SQL } from '../../sandbox/schema.ts'
import { type Postgres, startPostgres } from './postgres.ts'

export const ALICE = '11111111-1111-4111-8111-111111111111'
export const BOB = '22222222-2222-4222-8222-222222222222'

/** Every migration, in order, as one script. */
export const MIGRATION = MIGRATIONS_SQL.join('\n')

/** supabase/compat/user_accounts.sql. */
export const COMPAT = readFileSync(join(import.meta.dirname, '../compat/user_accounts.sql'), 'utf8')

/** A script run as one transaction, as `supabase db push` and the SQL editor run a file. */
export const inOneTransaction = (script: string) => `begin;\n${script}\ncommit;`

/**
 * A PostgreSQL 15 cluster whose `postgres` database is a Supabase project with nothing in it
 * (sandbox/supabase.sql): the template of every database `project` makes. Roles belong to the
 * cluster, so they are made once, there.
 */
export async function startCluster(): Promise<Postgres> {
  const pg = startPostgres()
  await pg.sql(SUPABASE_SQL)
  return pg
}

/**
 * A new database `name`, a copy of the empty project, with the product's own schema
 * (sandbox/product.sql) unless `bare`, Alice and Bob as auth users, and the migrations applied
 * unless `migrated: false`.
 */
export async function project(pg: Postgres, name: string, options: { bare?: boolean; migrated?: boolean } = {}): Promise<Database> {
  await pg.sql(`create database ${name} template postgres`)
  const sql = (text: string) => pg.sql(text, name)
  if (!options.bare) await sql(PRODUCT_SQL)
  await sql(`insert into auth.users (id, email) values ('${ALICE}', 'alice@example.com'), ('${BOB}', 'bob@example.com')`)
  if (options.migrated ?? true) await sql(inOneTransaction(MIGRATION))
  return {
    sql,
    as: (role, statement, sub = ALICE) => sql(`set role ${role}; set request.jwt.claim.sub = '${sub}'; ${statement}`),
  }
}

export type Database = {
  /** Runs SQL as the owner (postgres). */
  sql: (text: string) => Promise<string>
  /** Runs a statement as an API role, with the JWT subject PostgREST would set (Alice unless told). */
  as: (role: string, statement: string, sub?: string) => Promise<string>
}
