/**
 * The database schema this Worker was built for: the migration that makes it, and the version that
 * file's `tiktok_connect_schema()` answers. A higher version is fine: a later migration keeps older
 * Workers working while they are replaced (apply it, then deploy). Dependency-free, so the tests and
 * the tooling read the Worker's own values.
 */
export const SCHEMA = { version: 1, file: 'supabase/migrations/20261125000000_tiktok_connect.sql' } as const

/** Whether the database holds that schema: never applied, an older version, or there. */
export type SchemaStatus = 'ok' | 'missing' | 'outdated'
