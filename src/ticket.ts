import { AppError } from './errors'
import type { TokenKind, TokenSigner } from './signed'

/**
 * The advertiser selection ticket: proof, for ten minutes and in the browser that finished the
 * flow, that this user may choose an advertiser for the connection made at `connectedAt`. The
 * callback page holds no Supabase session, so the ticket is what lets it submit the user's choice
 * without the token ever reaching the browser. It names the connection, not a list: the choice is
 * checked against the advertisers stored now, and a ticket for a connection that has since been
 * replaced, revoked or removed opens nothing. `b` is the flow's binding (the SHA-256 of its cookie,
 * as in the state): a leaked ticket opens nothing in a browser without that cookie.
 */
export const TICKET_TTL_SECONDS = 600

type TicketPayload = { u: string; c: string; b: string; exp: number }
export type TicketGrant = { userId: string; connectedAt: string; binding: string }

export const TICKET: TokenKind<TicketPayload> = {
  prefix: 't3',
  maxLength: 1024,
  read: (value) => {
    const p = value as Partial<TicketPayload> | null
    return p && typeof p.u === 'string' && typeof p.c === 'string' && typeof p.b === 'string' && Number.isInteger(p.exp) ? (p as TicketPayload) : undefined
  },
  invalid: (reason) => new AppError('invalid_ticket', { reason }),
  expired: () => new AppError('ticket_expired'),
}

export async function mintTicket(signer: TokenSigner, grant: TicketGrant, now: number) {
  const exp = Math.floor(now / 1000) + TICKET_TTL_SECONDS
  const ticket = await signer.sign(TICKET, { u: grant.userId, c: grant.connectedAt, b: grant.binding, exp })
  return { ticket, expires_at: new Date(exp * 1000).toISOString() }
}

/** The ticket's grant; whether this browser holds its binding cookie is the caller's check. */
export async function verifyTicket(signer: TokenSigner, ticket: string, now: number): Promise<TicketGrant> {
  const p = await signer.verify(TICKET, ticket, now)
  return { userId: p.u, connectedAt: p.c, binding: p.b }
}
