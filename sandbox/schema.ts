// The SQL a sandbox or test database is built from (Node only): what Supabase sets up, the product's
// own schema, then supabase/migrations in order, as a real project would apply them.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const MIGRATIONS = join(import.meta.dirname, '../supabase/migrations')

/** sandbox/supabase.sql: what every Supabase project has (roles, default privileges, auth.users). */
export const SUPABASE_SQL = readFileSync(join(import.meta.dirname, 'supabase.sql'), 'utf8')

/** sandbox/product.sql: the product's own table, which the migrations must leave untouched. */
export const PRODUCT_SQL = readFileSync(join(import.meta.dirname, 'product.sql'), 'utf8')

/** The migration files' paths from the repository root, in the order their names sort. */
export const MIGRATION_FILES: string[] = readdirSync(MIGRATIONS)
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((f) => `supabase/migrations/${f}`)

/** Every migration, in that order. */
export const MIGRATIONS_SQL: string[] = MIGRATION_FILES.map((f) => readFileSync(join(import.meta.dirname, '..', f), 'utf8'))
