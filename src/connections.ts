/**
 * The connection's life, from the code exchange to the disconnect, in plain values: the routes parse,
 * guard, call one of these and answer; the sweep calls `checkConnection`. Every race is decided by the
 * database; every change's event reaches the outbox through the store.
 */
import { encodeHex } from './encoding'
import { AppError, answerFor } from './errors'
import type { Services } from './services'
import { sha256 } from './signed'
import type { StatePayload } from './state'
import type { Claim, ClaimInput, ConnectionRow, ConnectionSummary, DetectedBy, Revoked } from './supabase'
import { mintTicket } from './ticket'
import { type Advertiser, TikTokError } from './tiktok'

/** A twin submission still in flight is polled this many times, this far apart, before "in progress". */
export const REPLAY_POLLS = 6
export const REPLAY_POLL_MS = 500

/**
 * How long after its permits' slot the flow's second call may still use its permit. The governor
 * counts both permits across the whole span, so a longer one costs the app's throughput; a second
 * call later than this (a slow exchange) asks the governor for a permit of its own.
 */
const FLOW_SPAN_MS = 2000

/** Stored and not revoked at TikTok. */
export const isLive = (row: ConnectionRow | undefined): row is ConnectionRow & { revoked_at: null } => row !== undefined && row.revoked_at === null

/** A finished exchange: the connection as stored, where the page goes next, and a ticket to change the choice. */
export type Exchanged = {
  connection: ConnectionSummary
  returnTo: string
  /** With several advertisers, or none chosen: the callback page's proof for the choice. */
  selection: { ticket: string; expires_at: string } | undefined
  /** No chosen advertiser: the sweep found it gone since, and the user must choose again. */
  advertiserRequired: boolean
}

/**
 * Where a state stands for this request: `claimed` (this request exchanges the code), `done` (an
 * earlier submission stored the connection), `used`, `locked`, or `pending` once a twin submission
 * still in flight has had its polls to finish.
 */
async function claimState(s: Services, claim: ClaimInput): Promise<Claim> {
  let outcome = await s.db.claimExchange(claim)
  for (let poll = 0; outcome.outcome === 'pending' && poll < REPLAY_POLLS; poll++) {
    await s.clock.sleep(REPLAY_POLL_MS)
    outcome = await s.db.claimExchange(claim)
  }
  return outcome
}

/**
 * Exchanges the auth code of a verified state once, lists the advertisers and stores the connection.
 * A repeat of the same submission gets the connection as stored now.
 */
export async function exchangeCode(s: Services, state: StatePayload, authCode: string): Promise<Exchanged> {
  const userId = state.u
  // Who holds the claim is decided by a value only this request knows, never by a request header.
  const claim = { nonce: state.n, userId, codeHash: encodeHex(await sha256(authCode)), claimedBy: crypto.randomUUID() }
  const answer = async (connection: ConnectionSummary, returnTo: string): Promise<Exchanged> => {
    const advertiserRequired = connection.advertiser === null
    const choosing = connection.advertisers.length > 1 || (advertiserRequired && connection.advertisers.length > 0)
    const selection = choosing ? await mintTicket(s.signer, { userId, connectedAt: connection.connected_at, binding: state.n }, s.clock.now()) : undefined
    return { connection, returnTo, selection, advertiserRequired }
  }

  // The flow's two TikTok calls (the exchange, then the advertiser list) take their permits in one
  // governor call made alongside the claim, so the quota adds no round trip of its own.
  s.tiktok.prepay(2, FLOW_SPAN_MS)
  const claimed = await claimState(s, claim)
  if (claimed.outcome !== 'claimed') {
    // No exchange follows: the permits go back, or replays alone would fill the app's budget.
    s.background(s.tiktok.releasePrepaid())
    s.log.info('oauth.replay', { outcome: claimed.outcome })
    if (claimed.outcome === 'done' && claimed.connection) return answer(claimed.connection, claimed.return_to)
    throw claimed.outcome === 'pending'
      ? new AppError('exchange_in_progress')
      : claimed.outcome === 'locked'
        ? new AppError('state_locked')
        : new AppError('state_used')
  }

  // From here on TikTok may grant a token: the rest runs to its end (stored, or released and
  // revoked) even if the browser goes away, so no grant is left live and no claim stays pending.
  const finishing = finish(s, claim, authCode, state.r)
  s.background(finishing.catch(() => undefined))
  const finished = await finishing
  return answer(finished.connection, finished.returnTo)
}

type Finished = { connection: ConnectionSummary; returnTo: string }

/** Exchanges the code, lists the advertisers and stores the connection, for a claimed state. */
async function finish(s: Services, claim: ClaimInput, authCode: string, returnTo: string): Promise<Finished> {
  let accessToken: string | undefined
  try {
    accessToken = (await s.tiktok.exchangeCode(authCode)).accessToken
    const advertisers = await s.tiktok.listAdvertisers(accessToken)
    // The first advertiser is stored at once, so the connection is usable even if the user never
    // picks; with several, the answer carries a ticket to change it.
    const chosen = advertisers[0]
    if (!chosen) throw new AppError('no_advertisers')
    const storedToken = await s.tokens.encrypt(accessToken, claim.userId)
    const written = await s.db.completeExchange({
      nonce: claim.nonce,
      userId: claim.userId,
      claimedBy: claim.claimedBy,
      storedToken,
      advertiserId: chosen.id,
      advertisers,
      returnTo,
    })
    // claim_lost: this request's claim is no longer pending (a retried completion that had committed
    // is recovered below, when the release finds the claim done).
    if (written.outcome !== 'ok') throw new AppError('state_used')
    s.log.info('oauth.success', { outcome: 'ok', user_id: claim.userId, advertiser_id: chosen.id, advertisers: advertisers.length })
    const { advertiser, connected_at } = written
    return { connection: { advertiser, advertisers: written.advertisers, connected_at }, returnTo }
  } catch (error) {
    const recovered = await giveBack(s, claim, accessToken, error)
    if (!recovered) throw error
    return recovered
  }
}

/**
 * After a failed exchange: gives the claim back (counting the failure) and, when TikTok had already
 * granted a token that will now never be stored, revokes it so no live grant is left behind. The
 * release decides: once it has moved this request's claim out of 'pending', this request's
 * completion can never commit, so the revoke cannot kill a stored connection. If instead the
 * completion had committed (its answer was lost), the connection is answered as a replay would be.
 */
async function giveBack(s: Services, claim: ClaimInput, accessToken: string | undefined, error: unknown): Promise<Finished | undefined> {
  const released = await s.db.releaseExchange(claim.nonce, claim.claimedBy).catch((cause: unknown) => {
    s.log.warn('supabase.release', { outcome: 'error', error: cause })
    return 'unknown' as const
  })
  if (released === 'done') {
    const replayed = await s.db.claimExchange(claim).catch(() => undefined)
    if (replayed?.outcome === 'done' && replayed.connection) return { connection: replayed.connection, returnTo: replayed.return_to }
  }
  if (!accessToken) return undefined
  const reason = answerFor(error).code
  if (released !== 'released') {
    // Whether the connection was stored is unknown: revoking could kill a live one.
    s.log.warn('tiktok.revoke', { outcome: 'skipped', reason, release: released })
    return undefined
  }
  await s.tiktok.revokeToken(accessToken, reason)
  return undefined
}

/** One live connection to check at TikTok: pass `connectedAt` back, so an answer about an old token never touches a newer connection. */
export type ConnectionToCheck = { userId: string; connectedAt: string; storedToken: string }

/** What TikTok said of a connection's token: the advertisers it reaches, or that it is refused (recorded as revoked). */
export type Checked = { kind: 'listed'; advertisers: Advertiser[] } | { kind: 'revoked'; code: number; recorded: Revoked['outcome'] }

/**
 * Asks TikTok for the advertisers a stored token reaches. A token TikTok refuses (40105, 40102) is
 * marked revoked with its code and its event queued; any other failure is thrown for the caller.
 * `attempts`: the sweep asks for one, since it would rather stop than spend the app's quota.
 */
export async function checkConnection(s: Services, item: ConnectionToCheck, detectedBy: DetectedBy, attempts?: number): Promise<Checked> {
  const token = await s.tokens.decrypt(item.storedToken, item.userId, s.log)
  try {
    return { kind: 'listed', advertisers: await s.tiktok.listAdvertisers(token, attempts) }
  } catch (error) {
    if (!(error instanceof TikTokError && error.kind === 'token_rejected' && error.code !== undefined)) throw error
    const marked = await s.db.markRevoked(item.userId, detectedBy, error.code, item.connectedAt)
    s.log.info('tiktok.token_revoked', { user_id: item.userId, tiktok_code: error.code, detected_by: detectedBy, outcome: marked.outcome })
    return { kind: 'revoked', code: error.code, recorded: marked.outcome }
  }
}

/** The user's connection (undefined: not connected); with `verify`, after asking TikTok whether its token still works. */
export async function readConnection(
  s: Services,
  userId: string,
  verify: boolean,
): Promise<{ row: ConnectionRow | undefined; verified?: { advertisers: Advertiser[] | undefined } }> {
  const row = await s.db.readConnection(userId, verify)
  if (!verify || !isLive(row) || !row.access_token) return { row }
  const checked = await checkConnection(s, { userId, connectedAt: row.connected_at, storedToken: row.access_token }, 'verify')
  if (checked.kind === 'listed') return { row, verified: { advertisers: checked.advertisers } }
  if (checked.recorded === 'ok' || checked.recorded === 'already_revoked')
    return { row: { ...row, revoked_at: new Date(s.clock.now()).toISOString() }, verified: { advertisers: undefined } }
  // Replaced or disconnected while TikTok was asked: the refused token is not the stored one now.
  return { row: await s.db.readConnection(userId) }
}

/** False when the token cannot be revoked: TikTok unsure, or a stored token that no key opens. */
async function revokeStored(s: Services, stored: string, userId: string): Promise<boolean> {
  let token: string
  try {
    token = await s.tokens.decrypt(stored, userId, s.log)
  } catch (error) {
    if (!(error instanceof AppError)) throw error
    s.log.warn('tiktok.revoke', { outcome: 'skipped', reason: error.code })
    return false
  }
  return s.tiktok.revokeToken(token, 'disconnect')
}

/**
 * Revokes at TikTok when it can, and forgets the connection read whatever TikTok answered. A newer
 * connection made meanwhile (another tab) is left alone: its grant was not the one revoked.
 */
export async function disconnect(s: Services, userId: string): Promise<{ revoked: boolean; hadToken: boolean }> {
  const row = await s.db.readConnection(userId, true)
  // With nothing stored there is nothing to clear, and a clear without a connection to name would
  // also remove one a concurrent exchange has just stored.
  if (!row?.access_token) {
    s.log.info('oauth.disconnect', { outcome: 'not_connected', user_id: userId, revoked: false, had_token: false })
    return { revoked: false, hadToken: false }
  }
  const revoked = await revokeStored(s, row.access_token, userId)
  const cleared = await s.db.disconnect(userId, revoked, row.connected_at)
  s.log.info('oauth.disconnect', { outcome: cleared.outcome, user_id: userId, revoked, had_token: true })
  if (cleared.outcome === 'stale') throw new AppError('connection_changed')
  return { revoked, hadToken: true }
}

/**
 * Stores the advertiser the user chose, from the advertisers stored with the live connection: the
 * one made at `connectedAt` (a ticket names its connection), or the one stored now.
 */
export async function chooseAdvertiser(s: Services, userId: string, advertiserId: string, connectedAt: string | undefined) {
  let connection = connectedAt
  if (connection === undefined) {
    const row = await s.db.readConnection(userId)
    if (!isLive(row)) throw new AppError('not_connected')
    connection = row.connected_at
  }
  // The database checks the id against the list stored with that connection, if it is still the live one.
  const chosen = await s.db.chooseAdvertiser(userId, advertiserId, connection)
  if (chosen.outcome === 'not_allowed') throw new AppError('advertiser_not_allowed', { detail: { advertiser_id: advertiserId } })
  if (chosen.outcome !== 'ok') throw connectedAt !== undefined ? new AppError('invalid_ticket', { reason: 'stale' }) : new AppError('not_connected')
  s.log.info('oauth.advertiser_chosen', { outcome: 'ok', user_id: userId, advertiser_id: chosen.advertiser.id, changed: chosen.event_id !== null })
  return chosen
}
