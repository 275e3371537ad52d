/**
 * One setting that stops the Worker. `reason` says what is wrong and what is expected, in fixed words:
 * it is built from the rule, never from the value, so health and the log can show it.
 */
export type ConfigProblem = { name: string; problem: 'missing' | 'malformed'; reason: string }

/**
 * Whether the database holds the schema this Worker needs: `missing` (never applied), `outdated` (an
 * older version), `ok`, or `unknown` (the settings do not allow asking, or the database did not
 * answer).
 */
export type SchemaHealth = 'ok' | 'missing' | 'outdated' | 'unknown'

/**
 * What `GET /api/tiktok/health` answers. Dependency-free, so the tooling (`scripts/stack.ts`) reads
 * the Worker's own shape rather than restating it. `schema_file` is the migration this Worker needs.
 */
export type HealthAnswer = {
  ok: boolean
  missing: string[]
  malformed: string[]
  problems: ConfigProblem[]
  schema: SchemaHealth
  schema_file: string
}
