import { AppError, errors } from './errors'
import { seal, unseal } from './signed'

/**
 * The advertiser selection ticket: proof, for ten minutes and in the browser that finished the
 * flow, that this user may choose an advertiser for the connection made at `connectedAt`. The callback page holds no Supabase session, so the
 * ticket is what lets it submit the user's choice without the token ever reaching the browser. It
 * names the connection, not a list: the choice is checked against the advertisers stored now, and a
 * ticket for a connection that has since been replaced, revoked or removed opens nothing.
 */
// `b` is the flow's binding (the SHA-256 of its cookie, as in the state): a leaked ticket opens
// nothing in a browser without that cookie.
const KIND = 't3'
export const TICKET_TTL_SECONDS = 600
const MAX_TICKET_LENGTH = 1024

type TicketPayload = { u: string; c: string; b: string; exp: number }
export type TicketGrant = { userId: string; connectedAt: string; binding: string }

export async function mintTicket(secret: string, grant: TicketGrant, now = Date.now()) {
  const exp = Math.floor(now / 1000) + TICKET_TTL_SECONDS
  const payload: TicketPayload = { u: grant.userId, c: grant.connectedAt, b: grant.binding, exp }
  return { ticket: await seal(secret, KIND, payload), expires_at: new Date(exp * 1000).toISOString() }
}

/** The ticket's grant; whether this browser holds its binding cookie is the caller's check. */
export async function verifyTicket(secret: string, ticket: string, now = Date.now()): Promise<TicketGrant> {
  const opened = await unseal(secret, KIND, ticket, MAX_TICKET_LENGTH)
  if ('reason' in opened) throw errors.invalidTicket(opened.reason)
  const p = opened.payload as Partial<TicketPayload> | null
  if (!p || typeof p.u !== 'string' || typeof p.c !== 'string' || typeof p.b !== 'string' || !Number.isInteger(p.exp))
    throw errors.invalidTicket('payload')
  if (Math.floor(now / 1000) >= p.exp!) throw new AppError('ticket_expired')
  return { userId: p.u, connectedAt: p.c, binding: p.b }
}
