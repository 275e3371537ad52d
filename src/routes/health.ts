import { Hono } from 'hono/tiny'
import type { RequestEnv } from '../middleware/context'
import type { HealthAnswer } from '../health-answer'
import { checkedConfig, checkedSchema } from '../services'
import { SCHEMA } from '../schema'

export const health = new Hono<RequestEnv>()

/**
 * Names the settings that are missing or malformed and says what each should be, never its value.
 * `problems` keeps every detail; `missing` and `malformed` are its names, split for a quick read.
 * `schema` says whether the database holds this Worker's schema, and `schema_file` what to apply:
 * asked once per isolate while it does, so a monitor polling health costs the database nothing.
 */
health.get('/', async (c) => {
  const { problems } = checkedConfig(c.env)
  const schema = await checkedSchema(c.env, c.get('log'))
  const named = (kind: 'missing' | 'malformed') => problems.filter((p) => p.problem === kind).map((p) => p.name)
  const ok = problems.length === 0 && schema === 'ok'
  const answer: HealthAnswer = { ok, missing: named('missing'), malformed: named('malformed'), problems, schema, schema_file: SCHEMA.file }
  return c.json(answer, ok ? 200 : 503)
})
