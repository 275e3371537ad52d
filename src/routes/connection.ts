import type { Context } from 'hono'
import { Hono } from 'hono/tiny'
import * as z from 'zod/mini'
import { enqueueEvent } from '../events/enqueue'
import { authenticatedUser, bindingCookie, requireOrigin, requireUser } from '../middleware'
import { openToken } from '../stored-token'
import type { AppEnv } from '../env'
import { AppError, errors } from '../errors'
import type { ConnectionRow } from '../supabase'
import { limitPerUser, throttle } from '../throttle'
import { TOKEN_REJECTED, tiktokCodeOf } from '../tiktok'
import { verifyTicket } from '../ticket'
import { jsonOnly, methodNotAllowed, validJson } from '../validate'

const chooseBody = z.object({
  advertiser_id: z.string('must be a string').check(z.regex(/^\d{1,32}$/, 'must be a decimal id string')),
  ticket: z.optional(z.string('must be a string').check(z.maxLength(1024, 'is too long'))),
})

/** Connected and not revoked at TikTok. */
const isLive = (row: ConnectionRow) => row.tiktok_connected_at !== null && row.tiktok_revoked_at === null

const summary = (row: ConnectionRow) => {
  const connected = isLive(row)
  return {
    connected,
    business_id: row.tiktok_business_id,
    account_id: row.tiktok_account_id,
    advertisers: row.tiktok_advertisers ?? [],
    connected_at: row.tiktok_connected_at,
    ...(!connected && { reason: row.tiktok_revoked_at ? 'revoked' : 'not_connected' }),
    // The sweep found the chosen advertiser gone from TikTok's list and cleared the choice.
    ...(connected && row.tiktok_business_id === null && { advertiser_required: true }),
  }
}

/** Hands the event a committed change wrote to the queue, after the answer. */
const enqueue = (c: Context<AppEnv>, eventId: string | null) => enqueueEvent(c.executionCtx, c.env, c.get('config'), c.get('log'), eventId)

export const connection = new Hono<AppEnv>()

/** The caller's own connection; `?verify=true` asks TikTok whether the token still works. */
connection.get('/connection', requireOrigin, requireUser, async (c) => {
  const userId = c.get('userId')
  const verify = c.req.query('verify') === 'true'
  // Only the check that calls TikTok is limited: reading the stored row costs no TikTok quota.
  if (verify) await throttle(c, c.env.USER_RATE_LIMIT, 'verify', userId)
  const db = c.get('db')
  const row = await db.readConnection(userId, verify)
  if (!row) throw errors.accountNotFound()
  if (!verify || !row.tiktok_access_token || row.tiktok_revoked_at) return c.json(summary(row))

  const token = await openToken(c.get('config'), c.get('log'), row.tiktok_access_token, userId)
  try {
    const advertisers = await c.get('tiktok').listAdvertisers(token)
    return c.json({ ...summary(row), advertisers, verified: true })
  } catch (error) {
    const code = tiktokCodeOf(error)
    if (code === undefined || !TOKEN_REJECTED.has(code)) throw error
    const marked = await db.markRevoked(userId, 'verify', code, row.tiktok_connected_at!)
    enqueue(c, marked.event_id)
    c.get('log').info('tiktok.token_revoked', { user_id: userId, tiktok_code: code, outcome: marked.outcome })
    if (marked.outcome === 'ok' || marked.outcome === 'already_revoked')
      return c.json({ ...summary({ ...row, tiktok_revoked_at: new Date().toISOString() }), verified: true })
    // Replaced or disconnected while TikTok was asked: the refused token is not the stored one now.
    const now = await db.readConnection(userId)
    if (!now) throw errors.accountNotFound()
    return c.json(summary(now))
  }
})

/** False when the token cannot be revoked: TikTok unsure, or a stored token that no key opens. */
async function revoke(c: Context<AppEnv>, stored: string, userId: string): Promise<boolean> {
  let token: string
  try {
    token = await openToken(c.get('config'), c.get('log'), stored, userId)
  } catch (error) {
    if (!(error instanceof AppError)) throw error
    c.get('log').warn('tiktok.revoke', { outcome: 'skipped', reason: error.code })
    return false
  }
  return c.get('tiktok').revokeToken(token, 'disconnect')
}

/**
 * Revokes at TikTok when it can, and forgets the connection read whatever TikTok answered. A newer
 * connection made meanwhile (another tab) is left alone: its grant was not the one revoked.
 */
connection.delete('/connection', requireOrigin, requireUser, limitPerUser('disconnect'), async (c) => {
  const userId = c.get('userId')
  const db = c.get('db')
  const row = await db.readConnection(userId, true)
  if (!row) throw errors.accountNotFound()
  const revoked = row.tiktok_access_token ? await revoke(c, row.tiktok_access_token, userId) : false
  // With nothing stored there is nothing to clear, and a clear without a connection to name would
  // also remove one a concurrent exchange has just stored.
  const cleared =
    row.tiktok_connected_at || row.tiktok_access_token
      ? await db.disconnect(userId, revoked, row.tiktok_connected_at)
      : ({ outcome: 'not_connected', event_id: null } as const)
  enqueue(c, cleared.event_id)
  c.get('log').info('oauth.disconnect', { outcome: cleared.outcome, user_id: userId, revoked, had_token: !!row.tiktok_access_token })
  if (cleared.outcome === 'account_not_found') throw errors.accountNotFound()
  if (cleared.outcome === 'stale') throw new AppError('connection_changed')
  return c.json({
    success: true,
    revoked,
    message: revoked
      ? 'TikTok is disconnected, and its access is revoked.'
      : row.tiktok_access_token
        ? 'TikTok is disconnected here, but TikTok could not confirm that its access is revoked. You can also remove the app in TikTok for Business.'
        : 'No TikTok account was connected.',
  })
})
connection.all('/connection', methodNotAllowed('GET, HEAD, DELETE'))

/**
 * Stores the advertiser the user chose, from the advertisers stored with the live connection. From
 * the callback page with the selection ticket, or later from the product with the user's access
 * token. A ticket only works for the connection it was minted for; sent with an access token, both
 * must name the same user.
 */
connection.post('/advertiser', requireOrigin, jsonOnly({ maxBytes: 2048 }), validJson(chooseBody), async (c) => {
  const { advertiser_id: id, ticket } = c.req.valid('json')
  const bearer = c.req.header('authorization') !== undefined || !ticket ? await authenticatedUser(c) : undefined
  const granted = ticket ? await verifyTicket(c.get('config').stateSecret, ticket) : undefined
  if (granted) {
    // The ticket works only beside the cookie of the browser that finished the flow.
    const cookie = await bindingCookie(c, granted.binding)
    if ('reason' in cookie) throw new AppError('ticket_not_bound', { detail: { reason: cookie.reason } })
  }
  if (granted && bearer !== undefined && granted.userId !== bearer)
    throw new AppError('ticket_user_mismatch')
  const userId = (granted?.userId ?? bearer)!
  await throttle(c, c.env.USER_RATE_LIMIT, 'advertiser', userId)

  const db = c.get('db')
  // A ticket names its connection; a bearer token chooses for the one stored now.
  let connectedAt = granted?.connectedAt
  if (!granted) {
    const row = await db.readConnection(userId)
    if (!row) throw errors.accountNotFound()
    if (!isLive(row)) throw errors.notConnected()
    connectedAt = row.tiktok_connected_at!
  }
  // The database checks the id against the list stored with that connection, if it is still the live one.
  const chosen = await db.chooseAdvertiser(userId, id, connectedAt!)
  enqueue(c, chosen.event_id)
  if (chosen.outcome === 'not_allowed') throw new AppError('advertiser_not_allowed', { detail: { advertiser_id: id } })
  if (chosen.outcome !== 'ok') throw granted ? errors.invalidTicket('stale') : errors.notConnected()
  c.get('log').info('oauth.advertiser_chosen', { outcome: 'ok', user_id: userId, business_id: chosen.business_id, changed: chosen.event_id !== null })
  return c.json({
    success: true,
    business_id: chosen.business_id,
    account_id: chosen.account_id,
    advertisers: chosen.advertisers,
    message: 'Advertiser saved',
  })
})
connection.all('/advertiser', methodNotAllowed('POST'))
