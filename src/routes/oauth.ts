import { Hono } from 'hono'
import { getCookie, setCookie } from 'hono/cookie'
import * as z from 'zod/mini'
import { allowedOrigin, authenticatedUser, requireConfig, sealToken, store, tiktokClient } from '../context'
import type { AppEnv } from '../env'
import { AppError, errors } from '../errors'
import type { Logger } from '../log'
import { parseReturnTo } from '../origin'
import { sha256 } from '../signed'
import { bindingMatches, mintState, STATE_TTL_SECONDS, verifyState } from '../state'
import { accountNotFound, type ExchangeResult, type ExchangeRow, type SupabaseStore } from '../supabase'
import { mintTicket } from '../ticket'
import { jsonOnly, methodNotAllowed, validJson } from '../validate'

const EXCHANGE_PATH = '/api/tiktok/oauth/exchange'
const BINDING_COOKIE = 'tiktok_oauth_binding'
const CALLBACK_PATH = '/oauth/callback'
// A twin submission still in flight is awaited this long before answering "in progress".
const REPLAY_POLLS = 6
const REPLAY_POLL_MS = 500

const text = (max: number) =>
  z.string('must be a string').check(z.minLength(1, 'must not be empty'), z.maxLength(max, `must be at most ${max} characters`))

const startBody = z.object({ return_to: z.optional(text(512)) })
const exchangeBody = z.object({ auth_code: text(1024), state: text(2048) })

const stateUsed = () =>
  new AppError('state_used', 409, 'This TikTok authorization was already used. Start the connection again from your profile.')

const inProgress = () =>
  new AppError('exchange_in_progress', 409, 'This TikTok connection is still being completed in another tab. Wait a moment, then check your profile.', {
    retryable: true,
  })

const hex = (bytes: ArrayBuffer) => [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('')

export const oauth = new Hono<AppEnv>()

oauth.use(requireConfig)

oauth.post('/start', jsonOnly({ maxBytes: 4096, optional: true }), validJson(startBody), async (c) => {
  const config = c.get('config')
  const log = c.get('log')
  const origin = allowedOrigin(c)
  const userId = await authenticatedUser(c)
  const returnTo = parseReturnTo(c.req.valid('json').return_to, origin)

  const { state, binding, expiresAt } = await mintState(config.stateSecret, { userId, origin, returnTo })
  log.protect(state, binding)
  // Kept until it expires, not cleared on success: a second tab or a retried submission of the same
  // callback must still prove it is this browser to get the first answer again.
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

  const origin = allowedOrigin(c)
  const payload = await verifyState(config.stateSecret, state)
  if (payload.o !== origin) throw errors.stateNotBound('origin')
  if (!(await bindingMatches(payload, cookie))) throw errors.stateNotBound(cookie ? 'cookie_mismatch' : 'no_cookie')

  const db = store(c)
  const claim = { nonce: payload.n, userId: payload.u, codeHash: hex(await sha256(authCode)), claimedBy: c.get('requestId') }
  const answer = async (result: ExchangeResult) => {
    const selection = result.advertisers.length > 1 ? await mintTicket(config.stateSecret, payload.u, result.advertisers) : undefined
    return c.json({ success: true, ...result, ...(selection && { selection }), message: 'TikTok connected successfully' })
  }

  const claimed = await db.claimExchange(claim)
  if (!claimed.claimed) return answer(await replay(db, claim, log, claimed.row))

  let result: ExchangeResult
  try {
    const tiktok = tiktokClient(c)
    const grant = await tiktok.exchangeCode(authCode)
    const advertisers = await tiktok.listAdvertisers(grant.accessToken)
    // The first advertiser is stored at once, so the connection is usable even if the user never
    // picks; with several, the answer carries a ticket to change it.
    const chosen = advertisers[0]
    if (!chosen)
      throw new AppError('no_advertisers', 422, 'TikTok did not share any advertiser account. Connect again and select at least one advertiser account.')
    result = { business_id: chosen.id, account_id: chosen.name, advertisers, return_to: payload.r }
    const outcome = await db.completeExchange({
      nonce: claim.nonce,
      userId: payload.u,
      storedToken: await sealToken(c, grant.accessToken, payload.u),
      result,
    })
    if (outcome === 'account_not_found') throw accountNotFound()
    // A retried completion whose first attempt had committed finds its claim already done.
    if (outcome === 'claim_lost') result = await replay(db, claim, log, await db.readExchange(claim.nonce))
  } catch (error) {
    await db.releaseExchange(claim.nonce, claim.claimedBy).catch((cause: unknown) => log.warn('supabase.release', { outcome: 'error', error: cause }))
    throw error
  }

  log.info('oauth.success', { outcome: 'ok', user_id: payload.u, business_id: result.business_id, advertisers: result.advertisers.length })
  return answer(result)
})
oauth.all('/exchange', methodNotAllowed)

/**
 * The state was claimed before: the same code gets the first exchange's answer (waiting briefly for
 * a twin still in flight); another code is refused. TikTok is not called again either way.
 */
async function replay(
  db: SupabaseStore,
  claim: { nonce: string; userId: string; codeHash: string },
  log: Logger,
  first: ExchangeRow | undefined,
): Promise<ExchangeResult> {
  for (let poll = 0, row = first; ; poll++, row = await db.readExchange(claim.nonce)) {
    if (row && (row.code_hash !== claim.codeHash || row.user_id !== claim.userId)) {
      log.info('oauth.replay', { outcome: 'state_used' })
      throw stateUsed()
    }
    if (row?.status === 'done' && row.result) {
      log.info('oauth.replay', { outcome: 'same_answer' })
      return row.result
    }
    if (poll >= REPLAY_POLLS) {
      log.info('oauth.replay', { outcome: 'in_progress' })
      throw inProgress()
    }
    await new Promise((resolve) => setTimeout(resolve, REPLAY_POLL_MS))
  }
}
