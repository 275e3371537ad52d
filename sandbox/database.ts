import { createPostgrest, jsonRows, type Sql } from './postgrest.ts'

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

const RESET = `do $$ begin
  execute (select 'truncate ' || string_agg(format('public.%I', tablename), ', ') || ' cascade' from pg_tables where schemaname = 'public');
end $$`

/** A SandboxDatabase over a PostgreSQL client in this process. */
export function sqlDatabase(db: Sql & { close(): Promise<void> }): SandboxDatabase {
  const rest = createPostgrest(db)
  return {
    rest,
    async rows<T>(sql: string, params: unknown[] = []) {
      const [first] = (await db.query<{ body: string }>(jsonRows(sql), params)).rows
      return JSON.parse(first?.body ?? '[]') as T[]
    },
    async reset(accounts) {
      await db.transaction(async (tx) => {
        await tx.query(RESET)
        await tx.query('insert into public.user_accounts (id, email) select id, email from jsonb_to_recordset($1::jsonb) as a(id uuid, email text)', [
          JSON.stringify(accounts),
        ])
      })
    },
    close: () => db.close(),
  }
}
