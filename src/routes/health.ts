import { Hono } from 'hono/tiny'
import type { RequestEnv } from '../middleware/context'
import type { HealthAnswer } from '../health-answer'
import { checkedConfig } from '../services'

export const health = new Hono<RequestEnv>()

/**
 * Names the settings that are missing or malformed and says what each should be, never its value.
 * `problems` keeps every detail; `missing` and `malformed` are its names, split for a quick read.
 */
health.get('/', (c) => {
  const { problems } = checkedConfig(c.env)
  const named = (kind: 'missing' | 'malformed') => problems.filter((p) => p.problem === kind).map((p) => p.name)
  const ok = problems.length === 0
  const answer: HealthAnswer = { ok, missing: named('missing'), malformed: named('malformed'), problems }
  return c.json(answer, ok ? 200 : 503)
})
