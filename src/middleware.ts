import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { verifySupabaseToken } from './auth'
import { clientsFor } from './clients'
import { type AppEnv, checkedConfig, secretsOf } from './env'
import { errors } from './errors'
import { Logger } from './log'
import { assertAllowedOrigin, requestOrigin } from './origin'

/** Per-request logger (secrets pre-registered for redaction) and the headers every answer carries. */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  c.set('log', new Logger(c.get('requestId'), [], secretsOf(c.env)))
  await next()
  c.header('Cache-Control', 'no-store')
  c.header('X-Content-Type-Options', 'nosniff')
})

/** Stops before any side effect when a setting is missing or malformed. */
export const requireConfig = createMiddleware<AppEnv>(async (c, next) => {
  const { config, problems } = checkedConfig(c.env)
  if (!config) {
    c.get('log').error('config.invalid', { settings: problems })
    throw errors.misconfigured(problems.map((p) => p.name))
  }
  c.set('config', config)
  await next()
})

type Ctx = Context<AppEnv>

/** The verified Supabase user behind `Authorization: Bearer <access token>`. */
export async function authenticatedUser(c: Ctx): Promise<string> {
  const match = /^Bearer ([A-Za-z0-9_.-]{1,8192})$/.exec(c.req.header('authorization') ?? '')
  if (!match) throw errors.unauthorized(c.req.header('authorization') ? 'malformed_header' : 'no_token')
  const config = c.get('config')
  const log = c.get('log')
  log.protect(match[1])
  return verifySupabaseToken(
    match[1]!,
    { supabaseUrl: config.supabaseUrl, jwtSecret: config.supabaseJwtSecret, timeoutMs: config.upstreamTimeoutMs },
    log,
  )
}

/** The request's origin, which must be allowed, and the page's `Origin` header must agree. */
export function allowedOrigin(c: Ctx): string {
  const origin = requestOrigin(c.req.url)
  assertAllowedOrigin(origin, c.get('config').allowedOrigins, c.req.header('origin'))
  return origin
}

/** Guard: the request comes from an allowed origin; sets `c.var.origin`. */
export const requireOrigin = createMiddleware<AppEnv>(async (c, next) => {
  c.set('origin', allowedOrigin(c))
  await next()
})

/** Guard: a verified Supabase user; sets `c.var.userId`. */
export const requireUser = createMiddleware<AppEnv>(async (c, next) => {
  c.set('userId', await authenticatedUser(c))
  await next()
})

/** The upstream clients, built once per request from the checked config: `c.var.db`, `c.var.tiktok`. */
export const withClients = createMiddleware<AppEnv>(async (c, next) => {
  const { db, tiktok } = clientsFor(c.get('config'), c.get('log'))
  c.set('db', db)
  c.set('tiktok', tiktok)
  await next()
})

