import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { verifySupabaseToken } from './auth'
import { type AppEnv, checkedConfig } from './env'
import { AppError, errors } from './errors'
import { Logger, secretForms } from './log'
import { assertAllowedOrigin, requestOrigin } from './origin'
import { SupabaseStore } from './supabase'
import { TikTokClient } from './tiktok'
import { decryptToken, encryptToken, isEncryptedToken } from './token-crypto'

// The configured secrets' search strings, prepared once per isolate.
const configuredSecrets = new WeakMap<object, string[]>()
const secretsOf = (env: AppEnv['Bindings']): string[] => {
  let forms = configuredSecrets.get(env)
  if (!forms) {
    const values = [env.TIKTOK_APP_SECRET, env.SUPABASE_SECRET_KEY, env.SUPABASE_JWT_SECRET, env.STATE_SECRET]
    // Each encryption key on its own too: one of several rotated keys could surface alone.
    values.push(env.TOKEN_ENCRYPTION_KEY, ...(env.TOKEN_ENCRYPTION_KEY?.split(/[,:]/) ?? []))
    forms = secretForms(values.filter((v): v is string => !!v))
    configuredSecrets.set(env, forms)
  }
  return forms
}

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

export const tiktokClient = (c: Ctx): TikTokClient => {
  const config = c.get('config')
  return new TikTokClient(
    { appId: config.tiktokAppId, appSecret: config.tiktokAppSecret, apiBase: config.tiktokApiBase, timeoutMs: config.upstreamTimeoutMs },
    c.get('log'),
  )
}

export const store = (c: Ctx): SupabaseStore => {
  const config = c.get('config')
  return new SupabaseStore({ url: config.supabaseUrl, secretKey: config.supabaseSecretKey, timeoutMs: config.upstreamTimeoutMs }, c.get('log'))
}

/** The token as stored: encrypted when a key is configured. */
export async function sealToken(c: Ctx, token: string, userId: string): Promise<string> {
  const keys = c.get('config').tokenEncryptionKeys
  return keys ? encryptToken(token, userId, keys) : token
}

/** The usable token from a stored value, plaintext or encrypted. */
export async function openToken(c: Ctx, stored: string, userId: string): Promise<string> {
  const keys = c.get('config').tokenEncryptionKeys
  if (!isEncryptedToken(stored)) return stored
  // An encrypted token with no key configured: the key was removed, not rotated.
  if (!keys) throw errors.misconfigured(['TOKEN_ENCRYPTION_KEY'])
  let token: string
  try {
    token = await decryptToken(stored, userId, keys)
  } catch (cause) {
    throw new AppError('token_unreadable', { detail: { reason: cause instanceof Error ? cause.message : 'decrypt' } })
  }
  c.get('log').protect(token)
  return token
}
