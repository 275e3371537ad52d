import { type Context, Hono } from 'hono'
import * as z from 'zod/mini'
import { allowedOrigin, authenticatedUser, openToken, requireConfig, store, tiktokClient } from '../context'
import type { AppEnv } from '../env'
import { AppError } from '../errors'
import { accountNotFound, type ConnectionRow } from '../supabase'
import { TOKEN_REJECTED, type Advertiser } from '../tiktok'
import { verifyTicket } from '../ticket'
import { jsonOnly, methodNotAllowed, validJson } from '../validate'

const chooseBody = z.object({
  advertiser_id: z.string('must be a string').check(z.regex(/^\d{1,32}$/, 'must be a decimal id string')),
  ticket: z.optional(z.string('must be a string').check(z.maxLength(16_384, 'is too long'))),
})

const notConnected = () =>
  new AppError('not_connected', 404, 'No TikTok account is connected. Connect TikTok first, then choose an advertiser.')

const summary = (row: ConnectionRow) => {
  const connected = row.tiktok_connected_at !== null && row.tiktok_revoked_at === null
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

connection.use(requireConfig)

/** The caller's own connection; `?verify=true` asks TikTok whether the token still works. */
connection.get('/connection', async (c) => {
  allowedOrigin(c)
  const userId = await authenticatedUser(c)
  const verify = c.req.query('verify') === 'true'
  const db = store(c)
  const row = await db.readConnection(userId, verify)
  if (!row) throw accountNotFound()
  if (!verify || !row.tiktok_access_token || row.tiktok_revoked_at) return c.json(summary(row))

  const token = await openToken(c, row.tiktok_access_token, userId)
  try {
    const advertisers = await tiktokClient(c).listAdvertisers(token)
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
    token = await openToken(c, stored, userId)
  } catch (error) {
    if (!(error instanceof AppError)) throw error
    c.get('log').warn('tiktok.revoke', { outcome: 'skipped', reason: error.code })
    return false
  }
  return tiktokClient(c).revokeToken(token)
}

/** Revokes at TikTok when it can, and forgets the connection whatever TikTok answered. */
connection.delete('/connection', async (c) => {
  allowedOrigin(c)
  const userId = await authenticatedUser(c)
  const db = store(c)
  const row = await db.readConnection(userId, true)
  if (!row) throw accountNotFound()
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
connection.all('/connection', methodNotAllowed)

/**
 * Stores the advertiser the user chose. From the callback page with the selection ticket, or later
 * from the product with the user's access token, picking from the stored list.
 */
connection.post('/advertiser', jsonOnly({ maxBytes: 20_000 }), validJson(chooseBody), async (c) => {
  allowedOrigin(c)
  const { advertiser_id: id, ticket } = c.req.valid('json')
  const db = store(c)
  let userId: string
  let advertisers: Advertiser[]
  if (ticket) {
    ;({ userId, advertisers } = await verifyTicket(c.get('config').stateSecret, ticket))
  } else {
    userId = await authenticatedUser(c)
    const row = await db.readConnection(userId)
    if (!row) throw accountNotFound()
    advertisers = row.tiktok_advertisers ?? []
  }
  const chosen = advertisers.find((a) => a.id === id)
  if (!chosen)
    throw new AppError('advertiser_not_allowed', 403, 'This advertiser account is not one TikTok shared with your connection. Pick one from the list.', {
      detail: { advertiser_id: id },
    })
  if (!(await db.chooseAdvertiser(userId, chosen))) throw notConnected()
  c.get('log').info('oauth.advertiser_chosen', { outcome: 'ok', user_id: userId, business_id: chosen.id })
  return c.json({ success: true, business_id: chosen.id, account_id: chosen.name, advertisers, message: 'Advertiser saved' })
})
connection.all('/advertiser', methodNotAllowed)
