import { createPostgrest, jsonRows, type Queries, type Sql } from './postgrest.ts'

export type Row = Record<string, unknown>
/** A row of the product's user_accounts table, as the sandbox seeds it. */
export type Account = { id: string; email: string }

/**
 * The sandbox's PostgreSQL: the product's schema plus supabase/migrations, reached the way the Worker
 * reaches Supabase (`rest`) and, for tests and the sandbox's pages, with plain SQL as the owner.
 */
export type SandboxDatabase = {
  /** PostgREST's answer to a `/rest/v1/...` request, run as `service_role`. */
  rest(request: Request): Promise<Response>
  /** The rows of a query (or of a statement's `returning`), as PostgreSQL renders them in JSON. */
  rows<T = Row>(sql: string, params?: unknown[]): Promise<T[]>
  /** Empties every table of the public schema, then seeds `accounts`. */
  reset(accounts: Account[]): Promise<void>
  close(): Promise<void>
}

// DELETE rather than TRUNCATE, in one script: on tables this small it is an order of magnitude
// faster. With the foreign-key triggers off (replica mode, this transaction only) the order of the
// tables does not matter.
const emptyAll = (tables: string[]) =>
  `set local session_replication_role = replica; ${tables.map((t) => `delete from public."${t.replaceAll('"', '""')}";`).join(' ')}`

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
  return {
    async rest(request) {
      await session
      return rest(request)
    },
    async rows<T>(sql: string, params: unknown[] = []) {
      const [first] = (await asOwner((tx) => tx.query<{ body: string }>(jsonRows(sql), params))).rows
      return JSON.parse(first?.body ?? '[]') as T[]
    },
    async reset(accounts) {
      tables ??= asOwner((tx) => tx.query<{ name: string }>("select tablename as name from pg_tables where schemaname = 'public'")).then((r) => r.rows.map((t) => t.name))
      const script = emptyAll(await tables)
      await asOwner(async (tx) => {
        await tx.exec(script)
        // The seed goes in with triggers and foreign keys on, as any insert would.
        await tx.exec('set local session_replication_role = origin')
        await tx.query('insert into public.user_accounts (id, email) select id, email from jsonb_to_recordset($1::jsonb) as a(id uuid, email text)', [
          JSON.stringify(accounts),
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
