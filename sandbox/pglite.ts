// The sandbox's PostgreSQL in Node: PGlite (PostgreSQL compiled to WASM), with Supabase's set-up, the
// product's schema and every migration applied. Booting and migrating takes seconds; loading a
// migrated data folder takes well under one, so the migrated folder is kept on disk, keyed by what
// produced it.
import { PGlite } from '@electric-sql/pglite'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { sqlDatabase, type SandboxDatabase } from './database.ts'
import { MIGRATIONS_SQL, PRODUCT_SQL, SUPABASE_SQL } from './schema.ts'

const ROOT = resolve(import.meta.dirname, '..')
const CACHE = join(ROOT, 'node_modules/.cache/tiktok-connect-sandbox')

let template: Promise<Blob> | undefined

/** The migrated data folder as a tarball: from the disk cache, or built once per process. */
function migratedTemplate(): Promise<Blob> {
  template ??= (async () => {
    const sql = [SUPABASE_SQL, PRODUCT_SQL, ...MIGRATIONS_SQL]
    const version = JSON.parse(readFileSync(join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')).version as string
    const file = join(CACHE, `${createHash('sha256').update(version).update(sql.join('\0')).digest('hex').slice(0, 16)}.tar.gz`)
    try {
      return new Blob([readFileSync(file)])
    } catch {
      // Not built yet for this schema.
    }
    const db = await PGlite.create({ relaxedDurability: true })
    for (const statement of sql) await db.exec(statement)
    const tarball = await db.dumpDataDir('gzip')
    await db.close()
    mkdirSync(CACHE, { recursive: true })
    // Written aside and renamed, so a process reading the cache never sees half a file.
    const partial = `${file}.${process.pid}`
    writeFileSync(partial, Buffer.from(await tarball.arrayBuffer()))
    renameSync(partial, file)
    // Templates of older schemas are never loaded again.
    for (const old of readdirSync(CACHE)) if (join(CACHE, old) !== file && old.endsWith('.tar.gz')) rmSync(join(CACHE, old), { force: true })
    return tarball
  })()
  return template
}

/** A fresh, migrated PGlite database. */
export async function openDatabase(): Promise<SandboxDatabase> {
  const db = await PGlite.create({ loadDataDir: await migratedTemplate(), relaxedDurability: true })
  return sqlDatabase(db)
}
