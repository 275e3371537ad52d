import { createMiddleware } from 'hono/factory'
import { decodeHeader, verify } from 'hono/utils/jwt/jwt'
import type { JWTPayload } from 'hono/utils/jwt/types'
import { BINDING_COOKIE, readCookie } from '../cookies'
import { AppError } from '../errors'
import { ASYMMETRIC, type AsymmetricAlg } from '../jwks'
import { assertAllowedOrigin, requestOrigin } from '../origin'
import type { Services } from '../services'
import { bindingMatches, STATE, type StatePayload } from '../state'
import { type TicketGrant, verifyTicket } from '../ticket'
import type { Logger } from '../log'
import type { GuardEnv } from './context'

// Supabase's clock and this isolate's may disagree by a few seconds; a token just minted must work.
const CLOCK_SKEW_SECONDS = 30
const USER_ID = /^[A-Za-z0-9-]{1,64}$/
// RFC 6750's token characters: a JWT's base64url, or a service key made with `openssl rand -base64`.
const BEARER = /^Bearer ([A-Za-z0-9_.~+/-]{1,8192}=*)$/

/** Guard: the request comes from an allowed origin, and the page's `Origin` header agrees; sets `c.get('origin')`. */
export const requireOrigin = createMiddleware<GuardEnv<{ origin: string }>>(async (c, next) => {
  const origin = requestOrigin(c.req.url)
  assertAllowedOrigin(origin, c.get('services').config.allowedOrigins, c.req.header('origin'))
  c.set('origin', origin)
  await next()
})

/**
 * Verifies a Supabase access token: asymmetric signing keys through the project's JWKS, or HS256
 * with the legacy secret when one is configured. Returns the user id (`sub`).
 */
async function supabaseUser(s: Services, token: string): Promise<string> {
  const issuer = `${s.config.supabaseUrl}/auth/v1`
  // Hono refuses any iat after its own clock; ours below allows for skew.
  const verification = { iss: issuer, aud: 'authenticated', iat: false }
  let header: { alg?: unknown; kid?: unknown }
  try {
    header = decodeHeader(token) as typeof header
  } catch {
    throw new AppError('unauthorized', { reason: 'malformed' })
  }

  let payload: JWTPayload
  try {
    if (header.alg === 'HS256') {
      if (!s.userKeys.legacy) throw new AppError('unauthorized', { reason: 'hs256_not_configured' })
      payload = await verify(token, await s.userKeys.legacy, { alg: 'HS256', ...verification })
    } else if (typeof header.alg === 'string' && Object.hasOwn(ASYMMETRIC, header.alg)) {
      const alg = header.alg as AsymmetricAlg
      if (typeof header.kid !== 'string') throw new AppError('unauthorized', { reason: 'no_kid' })
      const key = await s.userKeys.jwks.publicKey(header.kid, alg, s.log)
      if (!key) throw new AppError('unauthorized', { reason: 'unknown_kid' })
      payload = await verify(token, key, { alg, ...verification })
    } else {
      throw new AppError('unauthorized', { reason: 'algorithm' })
    }
  } catch (error) {
    if (error instanceof AppError) throw error
    throw new AppError('unauthorized', { reason: error instanceof Error ? error.name : 'invalid' })
  }

  // Hono skips the expiry check when `exp` is absent; Supabase always sets it, so require it.
  if (typeof payload.exp !== 'number') throw new AppError('unauthorized', { reason: 'no_exp' })
  if (payload.iat !== undefined && !(typeof payload.iat === 'number' && payload.iat <= s.clock.now() / 1000 + CLOCK_SKEW_SECONDS))
    throw new AppError('unauthorized', { reason: 'iat' })
  // Issuer and audience do not make it a user's session: the project's keys also sign tokens for the
  // `anon` and `service_role` database roles, and neither is a user who can connect an account.
  if (payload.role !== 'authenticated') throw new AppError('unauthorized', { reason: 'role' })
  if (typeof payload.sub !== 'string' || !USER_ID.test(payload.sub)) throw new AppError('unauthorized', { reason: 'sub' })
  // Anyone can mint an anonymous user with the public anon key, as many as they like: left open, each
  // one could connect and spend the app's TikTok quota (ALLOW_ANONYMOUS_USERS opts in).
  if (payload.is_anonymous === true && !s.config.allowAnonymousUsers)
    throw new AppError('unauthorized', { message: 'Sign in with an account to connect TikTok; a guest session cannot.', detail: { reason: 'anonymous_user' } })
  return payload.sub
}

/** Guard: a verified Supabase user behind `Authorization: Bearer <access token>`; sets `c.get('userId')`. */
export const requireUser = createMiddleware<GuardEnv<{ userId: string }>>(async (c, next) => {
  const header = c.req.header('authorization')
  const match = BEARER.exec(header ?? '')
  if (!match) throw new AppError('unauthorized', { reason: header ? 'malformed_header' : 'no_token' })
  c.get('log').protect(match[1])
  c.set('userId', await supabaseUser(c.get('services'), match[1]!))
  await next()
})

/**
 * This browser's binding cookie when it proves `binding` (the SHA-256 a state or ticket carries),
 * or why not. Only the exact name counts: a look-alike (see `readCookie`) is ignored and logged, so
 * a planted one neither binds a flow nor locks out the real cookie beside it. Two cookies of the
 * exact name mean someone else managed to set one too: neither is trusted.
 */
async function bindingCookie(
  cookieHeader: string | undefined,
  log: Logger,
  binding: string,
): Promise<{ value: string } | { reason: 'no_cookie' | 'duplicate_cookie' | 'cookie_mismatch' }> {
  const { values, lookalikes } = readCookie(cookieHeader, BINDING_COOKIE)
  log.protect(...values)
  if (lookalikes > 0) log.warn('planted_cookie', { name: BINDING_COOKIE, lookalikes })
  if (values.length > 1) return { reason: 'duplicate_cookie' }
  const value = values[0]
  if (!value) return { reason: 'no_cookie' }
  return (await bindingMatches(binding, value)) ? { value } : { reason: 'cookie_mismatch' }
}

type StateInput = { in: { json: { state: string } }; out: { json: { state: string } } }

/**
 * Guard: the body's state is signed, fresh, minted on this origin, and bound to this browser's
 * cookie; sets `c.get('state')`, `c.get('binding')` (the cookie's value) and `c.get('userId')` (the state's
 * user). Runs after `requireOrigin` and the body's validation.
 */
export const requireBoundState = createMiddleware<GuardEnv<{ origin: string; state: StatePayload; binding: string; userId: string }>, string, StateInput>(
  async (c, next) => {
    const { state } = c.req.valid('json')
    const s = c.get('services')
    s.log.protect(state)
    const payload = await s.signer.verify(STATE, state, s.clock.now())
    if (payload.o !== c.get('origin')) throw new AppError('state_not_bound', { reason: 'origin' })
    const cookie = await bindingCookie(c.req.header('cookie'), s.log, payload.n)
    if ('reason' in cookie) throw new AppError('state_not_bound', { reason: cookie.reason })
    c.set('state', payload)
    c.set('binding', cookie.value)
    c.set('userId', payload.u)
    await next()
  },
)

type TicketInput = { in: { json: { ticket: string } }; out: { json: { ticket: string } } }

/**
 * Guard: the body's selection ticket is signed, fresh, and sent beside the binding cookie of the
 * browser that finished the flow; sets `c.get('ticket')` and `c.get('userId')` (the ticket's user).
 */
export const requireTicket = createMiddleware<GuardEnv<{ ticket: TicketGrant; userId: string }>, string, TicketInput>(async (c, next) => {
  const s = c.get('services')
  const grant = await verifyTicket(s.signer, c.req.valid('json').ticket, s.clock.now())
  const cookie = await bindingCookie(c.req.header('cookie'), s.log, grant.binding)
  if ('reason' in cookie) throw new AppError('ticket_not_bound', { detail: { reason: cookie.reason } })
  c.set('ticket', grant)
  c.set('userId', grant.userId)
  await next()
})

/** Guard: a product backend presenting one of `SERVICE_KEYS` as its bearer token; sets `c.get('serviceKeyId')` (logged, never the key). */
export const requireServiceKey = createMiddleware<GuardEnv<{ serviceKeyId: string }>>(async (c, next) => {
  const s = c.get('services')
  const match = BEARER.exec(c.req.header('authorization') ?? '')
  if (match) s.log.protect(match[1])
  const id = match ? await s.serviceKeys.identify(match[1]!) : undefined
  if (!id)
    throw new AppError('unauthorized', {
      message: 'Send one of this Worker’s service keys (SERVICE_KEYS) as Authorization: Bearer <key>.',
      reason: match ? 'unknown_service_key' : 'no_service_key',
    })
  c.set('serviceKeyId', id)
  s.log.info('proxy.caller', { service_key_id: id })
  await next()
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Guard: `X-TikTok-Connect-User` names the Supabase user whose connection the call uses; sets `c.get('userId')`. */
export const requireConnectUser = createMiddleware<GuardEnv<{ userId: string }>>(async (c, next) => {
  const userId = c.req.header('x-tiktok-connect-user')
  if (!userId || !UUID.test(userId))
    throw new AppError('invalid_request', { message: 'Send X-TikTok-Connect-User: the Supabase user id (a UUID) whose TikTok connection to use.' })
  c.set('userId', userId.toLowerCase())
  await next()
})
