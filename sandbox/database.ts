import { createPostgrest, jsonRows, type Queries, type Sql } from './postgrest.ts'

export type Row = Record<string, unknown>
/** A Supabase Auth user, as the sandbox seeds `auth.users`. */
export type User = { id: string; email: string }

/**
 * The sandbox's PostgreSQL: Supabase's set-up, the product's schema and supabase/migrations, reached
 * the way the Worker reaches Supabase (`rest`) and, for tests and the sandbox's pages, with plain SQL
 * as the owner.
 */
export type SandboxDatabase = {
  /** PostgREST's answer to a `/rest/v1/...` request, run as `service_role`. */
  rest(request: Request): Promise<Response>
  /** The rows of a query (or of a statement's `returning`), as PostgreSQL renders them in JSON. */
  rows<T = Row>(sql: string, params?: unknown[]): Promise<T[]>
  /**
   * Runs a script as the owner, DDL included, then reloads PostgREST's schema cache, as Supabase's
   * does on every DDL. A database a script changed is never handed to another test file.
   */
  exec(script: string): Promise<void>
  /** Empties every table of the public schema and `auth.users`, then seeds `users`. */
  reset(users: User[]): Promise<void>
  close(): Promise<void>
}

// DELETE rather than TRUNCATE, in one script: on tables this small it is an order of magnitude
// faster. With the foreign-key triggers off (replica mode, this transaction only) the order of the
// tables does not matter.
const emptyAll = (tables: string[]) => `set local session_replication_role = replica; ${tables.map((t) => `delete from ${t};`).join(' ')}`

/** A SandboxDatabase over a PostgreSQL client in this process. */
export function sqlDatabase(db: Sql & { close(): Promise<void> }): SandboxDatabase {
  // The session is the Worker's key's role, as PostgREST sets per request: what the REST surface runs
  // as. The owner's own work (tests, pages) switches back for its transaction only.
  const SESSION = `reset all; set role service_role; select set_config('request.jwt.claims', '{"role":"service_role"}', false)`
  let session = db.exec(SESSION)
  const rest = createPostgrest(db)
  const asOwner = async <T>(work: (tx: Queries) => Promise<T>) => {
    await session
    return db.transaction(async (tx) => {
      await tx.exec('set local role postgres')
      return work(tx)
    })
  }
  let tables: Promise<string[]> | undefined
  const tablesNow = () =>
    asOwner((tx) =>
      tx.query<{ name: string }>(
        "select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname = 'public' or (schemaname, tablename) = ('auth', 'users')",
      ),
    ).then((r) => r.rows.map((t) => t.name))
  return {
    async rest(request) {
      await session
      return rest(request)
    },
    async rows<T>(sql: string, params: unknown[] = []) {
      const [first] = (await asOwner((tx) => tx.query<{ body: string }>(jsonRows(sql), params))).rows
      return JSON.parse(first?.body ?? '[]') as T[]
    },
    async exec(script) {
      await asOwner((tx) => tx.exec(script))
      rest.reload()
      tables = undefined
    },
    async reset(users) {
      tables ??= tablesNow()
      const script = emptyAll(await tables)
      await asOwner(async (tx) => {
        await tx.exec(script)
        // The seed goes in with triggers and foreign keys on, as Supabase Auth's own insert would.
        await tx.exec('set local session_replication_role = origin')
        await tx.query('insert into auth.users (id, email) select id, email from jsonb_to_recordset($1::jsonb) as u(id uuid, email text)', [
          JSON.stringify(users),
        ])
      })
      // Owner SQL may have changed session settings (set_config(..., false)): a database handed to the
      // next test file starts as a fresh one would.
      session = db.exec(SESSION)
      await session
    },
    close: () => db.close(),
  }
}
