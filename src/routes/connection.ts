import { Hono } from 'hono/tiny'
import * as z from 'zod/mini'
import { chooseAdvertiser, disconnect, isLive, readConnection } from '../connections'
import { jsonOnly, validJson } from '../middleware/body'
import type { ApiEnv } from '../middleware/context'
import { requireOrigin, requireUser } from '../middleware/guards'
import { limitPerUser } from '../middleware/limits'
import type { ConnectionRow } from '../supabase'
import type { Advertiser } from '../tiktok'

const chooseBody = z.object({ advertiser_id: z.string('must be a string').check(z.regex(/^\d{1,32}$/, 'must be a decimal id string')) })

/** The advertiser the product uses, as every answer names it: `{ id, name }`, or null while none is chosen. */
export const advertiserOf = (id: string | null | undefined, name: string | null | undefined) => (id ? { id, name: name ?? '' } : null)

/** The connection as this API answers it. */
const summary = (row: ConnectionRow | undefined) => {
  const connected = isLive(row)
  return {
    connected,
    advertiser: advertiserOf(row?.advertiser_id, row?.advertiser_name),
    advertisers: row?.advertisers ?? [],
    connected_at: row?.connected_at ?? null,
    ...(!connected && { reason: row?.revoked_at ? 'revoked' : 'not_connected' }),
    // The sweep found the chosen advertiser gone from TikTok's list and cleared the choice.
    ...(connected && row.advertiser_id === null && { advertiser_required: true }),
  }
}

/** A stored choice as this API answers it. */
export const chosenAnswer = ({ advertiser, advertisers }: { advertiser: Advertiser; advertisers: Advertiser[] }) => ({
  success: true,
  advertiser,
  advertisers,
  message: 'Advertiser saved',
})

const verifying = (c: { req: { query(name: string): string | undefined } }) => c.req.query('verify') === 'true'

export const connection = new Hono<ApiEnv>()

/**
 * The caller's own connection; `?verify=true` asks TikTok whether the token still works. Only the
 * check that calls TikTok is limited: reading the stored row costs no TikTok quota.
 */
connection.get('/connection', requireOrigin, requireUser, limitPerUser('verify', verifying), async (c) => {
  const { row, verified } = await readConnection(c.get('services'), c.get('userId'), verifying(c))
  if (!verified) return c.json(summary(row))
  return c.json({ ...summary(row), ...(verified.advertisers && { advertisers: verified.advertisers }), verified: true })
})

connection.delete('/connection', requireOrigin, requireUser, limitPerUser('disconnect'), async (c) => {
  const { revoked, hadToken } = await disconnect(c.get('services'), c.get('userId'))
  return c.json({
    success: true,
    revoked,
    message: revoked
      ? 'TikTok is disconnected, and its access is revoked.'
      : hadToken
        ? 'TikTok is disconnected here, but TikTok could not confirm that its access is revoked. You can also remove the app in TikTok for Business.'
        : 'No TikTok account was connected.',
  })
})

/** The product switches the advertiser later, with the user's access token, from the stored list only. */
connection.post('/advertiser', requireOrigin, requireUser, limitPerUser('advertiser'), jsonOnly({ maxBytes: 2048 }), validJson(chooseBody), async (c) => {
  return c.json(chosenAnswer(await chooseAdvertiser(c.get('services'), c.get('userId'), c.req.valid('json').advertiser_id, undefined)))
})
