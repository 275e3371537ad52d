/**
 * One setting that stops the Worker. `reason` says what is wrong and what is expected, in fixed words:
 * it is built from the rule, never from the value, so health and the log can show it.
 */
export type ConfigProblem = { name: string; problem: 'missing' | 'malformed'; reason: string }

/**
 * What `GET /api/tiktok/health` answers. Dependency-free, so the tooling (`scripts/stack.ts`) reads
 * the Worker's own shape rather than restating it.
 */
export type HealthAnswer = { ok: boolean; missing: string[]; malformed: string[]; problems: ConfigProblem[] }
