import { Hono } from 'hono/tiny'
import { type AppEnv, checkedConfig } from '../env'

export const health = new Hono<AppEnv>()

/** Names the settings that are missing or malformed, never their values. */
health.get('/', (c) => {
  const { problems } = checkedConfig(c.env)
  const missing = problems.map((p) => p.name)
  return c.json({ ok: missing.length === 0, missing, problems }, missing.length === 0 ? 200 : 503)
})
