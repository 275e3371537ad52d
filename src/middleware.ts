import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { verifySupabaseToken } from './auth'
import { clientsFor } from './clients'
import { BINDING_COOKIE, readCookie } from './cookies'
import { type AppEnv, checkedConfig, secretsOf } from './env'
import { errors } from './errors'
import { Logger } from './log'
import { assertAllowedOrigin, requestOrigin } from './origin'
import { bindingMatches } from './state'

// hono/request-id's rule for an id: short, and nothing a log line or a header could choke on.
const REQUEST_ID = /^[\w\-=]{1,255}$/

/**
 * Per-request logger (secrets pre-registered for redaction) and the headers every answer carries.
 * The request id is always this Worker's own (`requestId({ headerName: '' })` reads no header), so
 * no client can make its requests look like someone else's in the logs; a well-formed id the client
 * sent is kept beside it as `client_request_id` and echoed as `X-Client-Request-Id`.
 */
export const requestContext = createMiddleware<AppEnv>(async (c, next) => {
  const clientRequestId = c.req.header('x-request-id')
  const known = clientRequestId !== undefined && REQUEST_ID.test(clientRequestId)
  c.set('log', new Logger(c.get('requestId'), [], secretsOf(c.env), known ? { client_request_id: clientRequestId } : {}))
  c.header('X-Request-Id', c.get('requestId'))
  if (known) c.header('X-Client-Request-Id', clientRequestId)
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
    { supabaseUrl: config.supabaseUrl, jwtSecret: config.supabaseJwtSecret, timeoutMs: config.upstreamTimeoutMs, allowAnonymous: config.allowAnonymousUsers },
    log,
  )
}

/**
 * This browser's binding cookie when it proves `binding` (the SHA-256 a state or ticket carries),
 * or why not. Only the exact name counts: a look-alike (see `readCookie`) is ignored and logged, so
 * a planted one neither binds a flow nor locks out the real cookie beside it. Two cookies of the
 * exact name mean someone else managed to set one too: neither is trusted.
 */
export async function bindingCookie(
  c: Ctx,
  binding: string,
): Promise<{ value: string } | { reason: 'no_cookie' | 'duplicate_cookie' | 'cookie_mismatch' }> {
  const { values, lookalikes } = readCookie(c.req.header('cookie'), BINDING_COOKIE)
  const log = c.get('log')
  log.protect(...values)
  if (lookalikes > 0) log.warn('planted_cookie', { name: BINDING_COOKIE, lookalikes })
  if (values.length > 1) return { reason: 'duplicate_cookie' }
  const value = values[0]
  if (!value) return { reason: 'no_cookie' }
  return (await bindingMatches(binding, value)) ? { value } : { reason: 'cookie_mismatch' }
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

