import { Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import * as z from 'zod/mini'
import { verifySupabaseToken } from '../auth'
import { requireConfig } from '../context'
import type { AppEnv } from '../env'
import { AppError, errors } from '../errors'
import { assertAllowedOrigin, parseReturnTo, requestOrigin } from '../origin'
import { bindingMatches, mintState, STATE_TTL_SECONDS, verifyState } from '../state'
import { SupabaseStore } from '../supabase'
import { TikTokClient } from '../tiktok'
import { jsonOnly, validJson } from '../validate'

const EXCHANGE_PATH = '/api/tiktok/oauth/exchange'
const BINDING_COOKIE = 'tiktok_oauth_binding'
const CALLBACK_PATH = '/oauth/callback'

const text = (max: number) =>
  z.string('must be a string').check(z.minLength(1, 'must not be empty'), z.maxLength(max, `must be at most ${max} characters`))

const startBody = z.object({ return_to: z.optional(text(512)) })
const exchangeBody = z.object({ auth_code: text(1024), state: text(2048) })

const bearer = (header: string | undefined): string => {
  const match = /^Bearer ([A-Za-z0-9_.-]{1,8192})$/.exec(header ?? '')
  if (!match) throw errors.unauthorized(header ? 'malformed_header' : 'no_token')
  return match[1]!
}

const methodNotAllowed = () => {
  throw new AppError('method_not_allowed', 405, 'This endpoint only accepts POST.')
}

export const oauth = new Hono<AppEnv>()

oauth.use(requireConfig)

oauth.post('/start', jsonOnly({ maxBytes: 4096, optional: true }), validJson(startBody), async (c) => {
  const config = c.get('config')
  const log = c.get('log')
  const origin = requestOrigin(c.req.url)
  assertAllowedOrigin(origin, config.allowedOrigins, c.req.header('origin'))

  const token = bearer(c.req.header('authorization'))
  log.protect(token)
  const userId = await verifySupabaseToken(
    token,
    { supabaseUrl: config.supabaseUrl, jwtSecret: config.supabaseJwtSecret, timeoutMs: config.upstreamTimeoutMs },
    log,
  )
  const returnTo = parseReturnTo(c.req.valid('json').return_to, origin)

  const { state, binding, expiresAt } = await mintState(config.stateSecret, { userId, origin, returnTo })
  log.protect(state, binding)
  setCookie(c, BINDING_COOKIE, binding, {
    path: EXCHANGE_PATH,
    httpOnly: true,
    secure: true,
    sameSite: 'Lax',
    maxAge: STATE_TTL_SECONDS,
  })

  const authorize = new URL(config.tiktokAuthUrl)
  authorize.searchParams.set('app_id', config.tiktokAppId)
  authorize.searchParams.set('state', state)
  authorize.searchParams.set('redirect_uri', origin + CALLBACK_PATH)
  log.info('oauth.start', { outcome: 'ok', user_id: userId, origin })
  return c.json({ authorize_url: authorize.toString(), expires_at: expiresAt.toISOString() })
})
oauth.all('/start', methodNotAllowed)

oauth.post('/exchange', jsonOnly({ maxBytes: 4096 }), validJson(exchangeBody), async (c) => {
  const config = c.get('config')
  const log = c.get('log')
  const { auth_code: authCode, state } = c.req.valid('json')
  const cookie = getCookie(c, BINDING_COOKIE)
  log.protect(authCode, state, cookie)

  const origin = requestOrigin(c.req.url)
  assertAllowedOrigin(origin, config.allowedOrigins, c.req.header('origin'))
  const payload = await verifyState(config.stateSecret, state)
  if (payload.o !== origin) throw errors.stateNotBound('origin')
  if (!(await bindingMatches(payload, cookie))) throw errors.stateNotBound(cookie ? 'cookie_mismatch' : 'no_cookie')

  const tiktok = new TikTokClient(
    {
      appId: config.tiktokAppId,
      appSecret: config.tiktokAppSecret,
      apiBase: config.tiktokApiBase,
      timeoutMs: config.upstreamTimeoutMs,
    },
    log,
  )
  const grant = await tiktok.exchangeCode(authCode)
  const advertisers = await tiktok.listAdvertisers(grant.accessToken)
  const chosen = advertisers[0]
  if (!chosen)
    throw new AppError(
      'no_advertisers',
      422,
      'TikTok did not share any advertiser account. Connect again and select at least one advertiser account.',
    )

  const store = new SupabaseStore(
    { url: config.supabaseUrl, secretKey: config.supabaseSecretKey, timeoutMs: config.upstreamTimeoutMs },
    log,
  )
  await store.saveConnection(payload.u, {
    accessToken: grant.accessToken,
    businessId: chosen.id,
    accountName: chosen.name,
  })

  deleteCookie(c, BINDING_COOKIE, { path: EXCHANGE_PATH, secure: true, httpOnly: true, sameSite: 'Lax' })
  log.info('oauth.success', { outcome: 'ok', user_id: payload.u, business_id: chosen.id, advertisers: advertisers.length })
  return c.json({
    success: true,
    business_id: chosen.id,
    account_id: chosen.name,
    advertisers,
    return_to: payload.r,
    message: 'TikTok connected successfully',
  })
})
oauth.all('/exchange', methodNotAllowed)
