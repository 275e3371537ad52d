import { AppError } from './errors'
import { seal, unseal } from './signed'
import type { Advertiser } from './tiktok'

/**
 * The advertiser selection ticket: proof, for ten minutes, that TikTok returned these advertisers
 * to this user. The callback page holds no Supabase session, so the ticket is what lets it submit
 * the user's choice without the token ever reaching the browser.
 */
const KIND = 't1'
export const TICKET_TTL_SECONDS = 600
const MAX_TICKET_LENGTH = 16_384

type TicketPayload = { u: string; a: [string, string][]; exp: number }

export async function mintTicket(secret: string, userId: string, advertisers: Advertiser[], now = Date.now()) {
  const exp = Math.floor(now / 1000) + TICKET_TTL_SECONDS
  const payload: TicketPayload = { u: userId, a: advertisers.map((a) => [a.id, a.name]), exp }
  return { ticket: await seal(secret, KIND, payload), expires_at: new Date(exp * 1000).toISOString() }
}

const invalidTicket = (reason: string) =>
  new AppError('invalid_ticket', 400, 'This advertiser choice is not valid. Connect TikTok again to choose an advertiser.', {
    detail: { reason },
  })

export async function verifyTicket(secret: string, ticket: string, now = Date.now()): Promise<{ userId: string; advertisers: Advertiser[] }> {
  const opened = await unseal(secret, KIND, ticket, MAX_TICKET_LENGTH)
  if ('reason' in opened) throw invalidTicket(opened.reason)
  const p = opened.payload as Partial<TicketPayload> | null
  if (!p || typeof p.u !== 'string' || !Array.isArray(p.a) || !Number.isInteger(p.exp)) throw invalidTicket('payload')
  if (Math.floor(now / 1000) >= p.exp!)
    throw new AppError('ticket_expired', 400, 'The time to choose an advertiser ran out. Choose it again from your profile, or connect TikTok again.')
  return { userId: p.u, advertisers: p.a.map(([id, name]) => ({ id, name })) }
}
