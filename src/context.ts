import { createMiddleware } from 'hono/factory'
import { type AppEnv, readConfig } from './env'
import { errors } from './errors'
import { Logger } from './log'

/** Per-request logger (secrets pre-registered for redaction) and the headers every answer carries. */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const env = c.env
  c.set(
    'log',
    new Logger(c.get('requestId'), [
      env.TIKTOK_APP_SECRET,
      env.SUPABASE_SECRET_KEY,
      env.SUPABASE_JWT_SECRET,
      env.STATE_SECRET,
    ]),
  )
  await next()
  c.header('Cache-Control', 'no-store')
  c.header('X-Content-Type-Options', 'nosniff')
})

/** Stops before any side effect when a setting is missing or malformed. */
export const requireConfig = createMiddleware<AppEnv>(async (c, next) => {
  const { config, problems } = readConfig(c.env)
  if (!config) {
    c.get('log').error('config.invalid', { settings: problems })
    throw errors.misconfigured(problems.map((p) => p.name))
  }
  c.set('config', config)
  await next()
})
