import type { Context } from 'hono'
import { setCookie } from 'hono/cookie'
import { Hono } from 'hono/tiny'
import * as z from 'zod/mini'
import { chooseAdvertiser, type Exchanged, exchangeCode } from '../connections'
import { BINDING_COOKIE } from '../cookies'
import { jsonOnly, validJson } from '../middleware/body'
import type { ApiEnv } from '../middleware/context'
import { requireBoundState, requireOrigin, requireTicket, requireUser } from '../middleware/guards'
import { limitPerClient, limitPerUser, limitRejected } from '../middleware/limits'
import { parseReturnTo } from '../origin'
import { chosenAnswer } from './connection'
import { mintState, STATE_TTL_SECONDS } from '../state'
import { TICKET_TTL_SECONDS } from '../ticket'

const CALLBACK_PATH = '/oauth/callback'

const text = (max: number) => z.string('must be a string').check(z.minLength(1, 'must not be empty'), z.maxLength(max, `must be at most ${max} characters`))
const advertiserId = z.string('must be a string').check(z.regex(/^\d{1,32}$/, 'must be a decimal id string'))

const startBody = z.object({ return_to: z.optional(text(512)) })
const exchangeBody = z.object({ auth_code: text(1024), state: text(2048) })
const ticketChoiceBody = z.object({ advertiser_id: advertiserId, ticket: text(1024) })

const setBindingCookie = (c: Context, binding: string, maxAge: number) =>
  setCookie(c, BINDING_COOKIE, binding, { path: '/', httpOnly: true, secure: true, sameSite: 'Lax', maxAge })

/**
 * The exchange's answer; `business_id` (the advertiser's id) and `account_id` (its name) are the
 * names the original integration's frontend reads.
 */
const exchangeAnswer = ({ connection, returnTo, selection, advertiserRequired }: Exchanged) => ({
  success: true,
  advertiser: connection.advertiser ?? null,
  advertisers: connection.advertisers,
  // Legacy names, for the original integration's frontend, which reads them: business_id is the
  // advertiser's id, account_id its name. Everything else speaks of `advertiser`.
  business_id: connection.advertiser?.id ?? null,
  account_id: connection.advertiser?.name ?? null,
  return_to: returnTo,
  ...(selection && { selection }),
  ...(advertiserRequired && { advertiser_required: true }),
  message: 'TikTok connected successfully',
})

export const oauth = new Hono<ApiEnv>()

oauth.post('/start', requireOrigin, requireUser, limitPerUser('start'), jsonOnly({ maxBytes: 4096, optional: true }), validJson(startBody), async (c) => {
  const { config, log, signer, clock } = c.get('services')
  const origin = c.get('origin'),
    userId = c.get('userId')
  const returnTo = parseReturnTo(c.req.valid('json').return_to, origin)

  const { state, binding, expiresAt } = await mintState(signer, { userId, origin, returnTo }, clock.now())
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
})

// Counted per address only once the state and its cookie verified, so junk sent from behind a shared
// address (an office NAT, a carrier) cannot use up the count of the real flows there; junk counts apart.
oauth.post(
  '/exchange',
  requireOrigin,
  limitRejected('exchange'),
  jsonOnly({ maxBytes: 4096 }),
  validJson(exchangeBody),
  requireBoundState,
  // Per user, then per address: addresses are cheap to rotate, accounts less so, and one account's
  // replays refused by its own count must not use up everyone else's at that address.
  limitPerUser('exchange'),
  limitPerClient('exchange'),
  async (c) => {
    const { auth_code: authCode } = c.req.valid('json')
    c.get('services').log.protect(authCode)
    const exchanged = await exchangeCode(c.get('services'), c.get('state'), authCode)
    // The ticket opens nothing without this browser's cookie: it must outlive the ticket.
    if (exchanged.selection) setBindingCookie(c, c.get('binding'), TICKET_TTL_SECONDS)
    return c.json(exchangeAnswer(exchanged))
  },
)

/**
 * The callback page stores the user's advertiser choice with the exchange's selection ticket: it
 * holds no Supabase session. Only for the connection the ticket names, only in its browser.
 */
oauth.post('/advertiser', requireOrigin, jsonOnly({ maxBytes: 2048 }), validJson(ticketChoiceBody), requireTicket, limitPerUser('advertiser'), async (c) => {
  return c.json(chosenAnswer(await chooseAdvertiser(c.get('services'), c.get('userId'), c.req.valid('json').advertiser_id, c.get('ticket').connectedAt)))
})
