import type { Context } from 'hono'
import { Hono } from 'hono/tiny'
import * as z from 'zod/mini'
import { authenticatedUser, requireOrigin, requireUser } from '../middleware'
import { openToken } from '../stored-token'
import type { AppEnv } from '../env'
import { AppError, errors } from '../errors'
import type { ConnectionRow } from '../supabase'
import { limitPerUser, throttle } from '../throttle'
import { TOKEN_REJECTED } from '../tiktok'
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
  }
}

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
    const code = error instanceof AppError ? error.detail?.tiktok_code : undefined
    if (typeof code !== 'number' || !TOKEN_REJECTED.has(code)) throw error
    await db.markRevoked(userId)
    c.get('log').info('tiktok.token_revoked', { user_id: userId, tiktok_code: code })
    return c.json({ ...summary({ ...row, tiktok_revoked_at: new Date().toISOString() }), verified: true })
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

/** Revokes at TikTok when it can, and forgets the connection whatever TikTok answered. */
connection.delete('/connection', requireOrigin, requireUser, limitPerUser('disconnect'), async (c) => {
  const userId = c.get('userId')
  const db = c.get('db')
  const row = await db.readConnection(userId, true)
  if (!row) throw errors.accountNotFound()
  const revoked = row.tiktok_access_token ? await revoke(c, row.tiktok_access_token, userId) : false
  await db.clearConnection(userId)
  c.get('log').info('oauth.disconnect', { outcome: 'ok', user_id: userId, revoked, had_token: !!row.tiktok_access_token })
  return c.json({
    success: true,
    revoked,
    message: revoked
      ? 'TikTok disconnected, and TikTok confirmed the access was revoked.'
      : row.tiktok_access_token
        ? 'TikTok disconnected here. TikTok could not confirm the revocation; you can also remove the app in TikTok for Business.'
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
  if (granted && bearer !== undefined && granted.userId !== bearer)
    throw new AppError('ticket_user_mismatch')
  const userId = (granted?.userId ?? bearer)!
  await throttle(c, c.env.USER_RATE_LIMIT, 'advertiser', userId)

  const db = c.get('db')
  const row = await db.readConnection(userId)
  if (!row) throw errors.accountNotFound()
  const live = isLive(row)
  // A ticket for a connection that is no longer the live one is stale, whatever it lists.
  if (granted && (!live || row.tiktok_connected_at !== granted.connectedAt)) throw errors.invalidTicket('stale')
  if (!live) throw errors.notConnected()
  const advertisers = row.tiktok_advertisers ?? []
  const chosen = advertisers.find((a) => a.id === id)
  if (!chosen)
    throw new AppError('advertiser_not_allowed', { detail: { advertiser_id: id } })
  // Written only if the connection read above is still the live one.
  if (!(await db.chooseAdvertiser(userId, chosen, row.tiktok_connected_at!))) throw granted ? errors.invalidTicket('stale') : errors.notConnected()
  c.get('log').info('oauth.advertiser_chosen', { outcome: 'ok', user_id: userId, business_id: chosen.id })
  return c.json({ success: true, business_id: chosen.id, account_id: chosen.name, advertisers, message: 'Advertiser saved' })
})
connection.all('/advertiser', methodNotAllowed('POST'))
