import type { Context } from 'hono'
import { Hono } from 'hono/tiny'
import { setCookie } from 'hono/cookie'
import { createMiddleware } from 'hono/factory'
import * as z from 'zod/mini'
import { claimState } from '../claims'
import { BINDING_COOKIE } from '../cookies'
import { enqueueEvent } from '../events/enqueue'
import { bindingCookie, requireOrigin, requireUser } from '../middleware'
import { sealToken } from '../stored-token'
import type { AppEnv } from '../env'
import { AppError, errors } from '../errors'
import { parseReturnTo } from '../origin'
import { sha256 } from '../signed'
import { mintState, STATE_TTL_SECONDS, verifyState } from '../state'
import type { ClaimInput, ConnectionSummary } from '../supabase'
import { limitPerClient, limitPerUser, limitRejected } from '../throttle'
import { mintTicket, TICKET_TTL_SECONDS } from '../ticket'
import { jsonOnly, methodNotAllowed, validJson } from '../validate'

const CALLBACK_PATH = '/oauth/callback'

const setBindingCookie = (c: Context<AppEnv>, binding: string, maxAge: number) =>
  setCookie(c, BINDING_COOKIE, binding, { path: '/', httpOnly: true, secure: true, sameSite: 'Lax', maxAge })

const text = (max: number) =>
  z.string('must be a string').check(z.minLength(1, 'must not be empty'), z.maxLength(max, `must be at most ${max} characters`))

const startBody = z.object({ return_to: z.optional(text(512)) })
const exchangeBody = z.object({ auth_code: text(1024), state: text(2048) })

// The runtime's own hex encoder (Workers have Uint8Array.prototype.toHex), not a string per byte.
const hex = (bytes: ArrayBuffer): string => (new Uint8Array(bytes) as Uint8Array & { toHex(): string }).toHex()

/**
 * Guard: the body's state is signed, fresh, minted on this origin, and bound to this browser's
 * cookie; sets `c.var.state`, `c.var.binding` (the cookie's value) and `c.var.userId` (the state's
 * user).
 */
type ExchangeInput = { in: { json: z.input<typeof exchangeBody> }; out: { json: z.output<typeof exchangeBody> } }
const requireBoundState = createMiddleware<AppEnv, string, ExchangeInput>(async (c, next) => {
  const { state } = c.req.valid('json')
  c.get('log').protect(state)
  const payload = await verifyState(c.get('config').stateSecret, state)
  if (payload.o !== c.get('origin')) throw errors.stateNotBound('origin')
  const cookie = await bindingCookie(c, payload.n)
  if ('reason' in cookie) throw errors.stateNotBound(cookie.reason)
  c.set('state', payload)
  c.set('binding', cookie.value)
  c.set('userId', payload.u)
  await next()
})

export const oauth = new Hono<AppEnv>()

oauth.post(
  '/start',
  requireOrigin,
  requireUser,
  limitPerUser('start'),
  jsonOnly({ maxBytes: 4096, optional: true }),
  validJson(startBody),
  async (c) => {
    const config = c.get('config')
    const log = c.get('log')
    const origin = c.get('origin')
    const userId = c.get('userId')
    const returnTo = parseReturnTo(c.req.valid('json').return_to, origin)

    const { state, binding, expiresAt } = await mintState(config.stateSecret, { userId, origin, returnTo })
    log.protect(state, binding)
    // Kept until it expires, not cleared on success: a second tab or a retried submission of the same
    // callback must still prove it is this browser to get the first answer again.
    setBindingCookie(c, binding, STATE_TTL_SECONDS)

    const authorize = new URL(config.tiktokAuthUrl)
    authorize.searchParams.set('app_id', config.tiktokAppId)
    authorize.searchParams.set('state', state)
    authorize.searchParams.set('redirect_uri', origin + CALLBACK_PATH)
    log.info('oauth.start', { outcome: 'ok', user_id: userId, origin })
    return c.json({ authorize_url: authorize.toString(), expires_at: expiresAt.toISOString() })
  },
)
oauth.all('/start', methodNotAllowed('POST'))

// Counted only once the state and its cookie verified, so junk sent from behind a shared address
// (an office NAT, a carrier) cannot use up the count of the real flows there; junk counts apart.
oauth.post(
  '/exchange',
  requireOrigin,
  limitRejected('exchange'),
  jsonOnly({ maxBytes: 4096 }),
  validJson(exchangeBody),
  requireBoundState,
  limitPerClient('exchange'),
  // Per user as well as per address: addresses are cheap to rotate, accounts less so.
  limitPerUser('exchange'),
  async (c) => {
  const { config, log, db } = c.var
  const { auth_code: authCode } = c.req.valid('json')
  const payload = c.get('state')
  log.protect(authCode)

  const userId = payload.u
  // Who holds the claim is decided by a value only this request knows, never by a request header.
  const claim = { nonce: payload.n, userId, codeHash: hex(await sha256(authCode)), claimedBy: crypto.randomUUID() }
  const answer = async (connection: ConnectionSummary, returnTo: string) => {
    // No chosen advertiser: the sweep found it gone since, and a replay must let the user choose again.
    const required = connection.business_id === null
    const selection =
      connection.advertisers.length > 1 || (required && connection.advertisers.length > 0)
        ? await mintTicket(config.stateSecret, { userId, connectedAt: connection.connected_at, binding: payload.n })
        : undefined
    // The ticket opens nothing without this browser's cookie: it must outlive the ticket.
    if (selection) setBindingCookie(c, c.get('binding'), TICKET_TTL_SECONDS)
    return c.json({
      success: true,
      business_id: connection.business_id,
      account_id: connection.account_id,
      advertisers: connection.advertisers,
      return_to: returnTo,
      ...(selection && { selection }),
      ...(required && { advertiser_required: true }),
      message: 'TikTok connected successfully',
    })
  }

  const claimed = await claimState(db, claim)
  if (claimed.outcome !== 'claimed') {
    log.info('oauth.replay', { outcome: claimed.outcome })
    if (claimed.outcome === 'done' && claimed.connection) return answer(claimed.connection, claimed.return_to)
    throw claimed.outcome === 'pending' ? errors.exchangeInProgress() : claimed.outcome === 'locked' ? errors.stateLocked() : errors.stateUsed()
  }

  // From here on TikTok may grant a token: the rest runs to its end (stored, or released and
  // revoked) even if the browser goes away, so no grant is left live and no claim stays pending.
  const finishing = finish(c, claim, authCode, payload.r)
  c.executionCtx.waitUntil(finishing.catch(() => undefined))
  const finished = await finishing
  return answer(finished.connection, finished.return_to)
})
oauth.all('/exchange', methodNotAllowed('POST'))

/** A finished exchange: the connection to answer, and where the page goes next. */
type Finished = { connection: ConnectionSummary; return_to: string }

/** Exchanges the code, lists the advertisers and stores the connection, for a claimed state. */
async function finish(
  c: Context<AppEnv>,
  claim: ClaimInput,
  authCode: string,
  returnTo: string,
): Promise<Finished> {
  const { config, db, tiktok, log } = c.var
  let accessToken: string | undefined
  try {
    accessToken = (await tiktok.exchangeCode(authCode)).accessToken
    const advertisers = await tiktok.listAdvertisers(accessToken)
    // The first advertiser is stored at once, so the connection is usable even if the user never
    // picks; with several, the answer carries a ticket to change it.
    const chosen = advertisers[0]
    if (!chosen) throw new AppError('no_advertisers')
    const result = { business_id: chosen.id, account_id: chosen.name, advertisers, return_to: returnTo }
    const storedToken = await sealToken(config, accessToken, claim.userId)
    const written = await db.completeExchange({ nonce: claim.nonce, userId: claim.userId, claimedBy: claim.claimedBy, storedToken, result })
    // claim_lost: this request's claim is no longer pending (a retried completion that had committed
    // is recovered below, when the release finds the claim done).
    if (written.outcome !== 'ok') throw written.outcome === 'account_not_found' ? errors.accountNotFound() : errors.stateUsed()
    enqueueEvent(c.executionCtx, c.env, config, log, written.event_id)
    log.info('oauth.success', { outcome: 'ok', user_id: claim.userId, business_id: chosen.id, advertisers: advertisers.length })
    return { connection: { ...result, connected_at: written.connected_at }, return_to: returnTo }
  } catch (error) {
    const recovered = await giveBack(c, claim, accessToken, error)
    if (!recovered) throw error
    return recovered
  }
}

/**
 * After a failed exchange: gives the claim back (counting the failure) and, when TikTok had already
 * granted a token that will now never be stored, revokes it so no live grant is left behind. The
 * release decides: once it has moved this request's claim out of 'pending', this request's
 * completion can never commit, so the revoke cannot kill a stored connection. If instead the completion had committed (its
 * answer was lost), the connection is answered as a replay would be.
 */
async function giveBack(
  c: Context<AppEnv>,
  claim: ClaimInput,
  accessToken: string | undefined,
  error: unknown,
): Promise<Finished | undefined> {
  const log = c.get('log')
  const db = c.get('db')
  const released = await db.releaseExchange(claim.nonce, claim.claimedBy).catch((cause: unknown) => {
    log.warn('supabase.release', { outcome: 'error', error: cause })
    return 'unknown' as const
  })
  if (released === 'done') {
    const replayed = await db.claimExchange(claim).catch(() => undefined)
    if (replayed?.outcome === 'done' && replayed.connection) return { connection: replayed.connection, return_to: replayed.return_to }
  }
  if (!accessToken) return undefined
  const reason = error instanceof AppError ? error.code : 'internal_error'
  if (released !== 'released') {
    // Whether the connection was stored is unknown: revoking could kill a live one.
    log.warn('tiktok.revoke', { outcome: 'skipped', reason, release: released })
    return undefined
  }
  await c.get('tiktok').revokeToken(accessToken, reason)
  return undefined
}
