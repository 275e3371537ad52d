// The SQL a sandbox or test database is built from (Node only): the product's schema as Supabase
// sets it up, then supabase/migrations in order, as a real project would apply them.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const MIGRATIONS = join(import.meta.dirname, '../supabase/migrations')

/** sandbox/product.sql: the product's database before the migrations. */
export const PRODUCT_SQL = readFileSync(join(import.meta.dirname, 'product.sql'), 'utf8')

/** Every migration, in the order their names sort. */
export const MIGRATIONS_SQL: string[] = readdirSync(MIGRATIONS)
  .filter((f) => f.endsWith('.sql'))
  .sort()
  .map((f) => readFileSync(join(MIGRATIONS, f), 'utf8'))
