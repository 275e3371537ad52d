import { PostgrestClient } from '@supabase/postgrest-js'
import { AppError } from './errors'
import { fetchWithTimeout } from './http'
import type { EventOutbox } from './events/outbox'
import type { Logger } from './log'
import { SCHEMA, type SchemaStatus } from './schema'
import type { Advertiser } from './tiktok'

const CONNECTIONS = 'tiktok_connections'
const ATTEMPTS = 2
// PostgreSQL's foreign_key_violation: a claim for a user no longer in auth.users.
const FOREIGN_KEY_VIOLATION = '23503'
// PostgREST's "no such function": the migration that defines it was never applied.
const NO_SUCH_FUNCTION = 'PGRST202'

/**
 * The live connection as stored now; `connected_at` identifies it. No chosen advertiser (null)
 * after the sweep found the chosen one removed: the user must choose again.
 */
export type ConnectionSummary = {
  advertiser: Advertiser | null
  advertisers: Advertiser[]
  connected_at: string
}

/** Every change's answer names the event it wrote, or null when it wrote none. */
type WithEvent<T> = T & { event_id: string | null }

export type Completed =
  | WithEvent<{ outcome: 'ok'; connected_at: string; advertiser: Advertiser; advertisers: Advertiser[] }>
  | WithEvent<{ outcome: 'claim_lost' }>
export type Chosen =
  | WithEvent<{ outcome: 'ok'; advertiser: Advertiser; advertisers: Advertiser[] }>
  | WithEvent<{ outcome: 'not_allowed' | 'stale' | 'not_connected' }>
export type Revoked = WithEvent<{ outcome: 'ok' | 'already_revoked' | 'stale' | 'not_connected' }>
export type Disconnected = WithEvent<{ outcome: 'ok' | 'not_connected' | 'stale' }>
export type Verified = WithEvent<{ outcome: 'ok' | 'advertiser_removed' | 'revoked' | 'stale' }>
/** Who noticed that TikTok refused a token. */
export type DetectedBy = 'verify' | 'sweep' | 'proxy'

/** A live connection the sweep took: pass `connected_at` back, so an answer about an old token never touches a newer connection. */
export type SweepItem = { user_id: string; connected_at: string; access_token: string }
export type PendingEvent = { id: string; type: string; created_at: string; attempts: number }
/** An undelivered event; `payload` is the body to send. */
export type StoredEvent = { id: string; type: string; payload: Record<string, unknown>; attempts: number; created_at: string }

/** One request's claim on a state; `claimedBy` is a random id the Worker makes per request. */
export type ClaimInput = { nonce: string; userId: string; codeHash: string; claimedBy: string }

/** Where a state stands for this request (`tiktok_claim_exchange`). */
export type Claim =
  | { outcome: 'claimed' }
  | { outcome: 'done'; return_to: string; connection: ConnectionSummary | null }
  | { outcome: 'pending' }
  | { outcome: 'used' }
  | { outcome: 'locked' }

/** A row of `tiktok_connections`, the token only when asked for. */
export type ConnectionRow = {
  access_token?: string
  advertiser_id: string | null
  advertiser_name: string | null
  advertisers: Advertiser[]
  connected_at: string
  revoked_at: string | null
  /** When TikTok last answered for this token (the sweep, or a proxied call), or when the sweep took it. */
  verified_at: string | null
}

const CONNECTION_COLUMNS = 'advertiser_id,advertiser_name,advertisers,connected_at,revoked_at,verified_at'

/** Legacy keys are JWTs and go as a bearer token too; Supabase refuses an `sb_secret_` key there. */
export const supabaseHeaders = (key: string): Record<string, string> =>
  key.startsWith('eyJ') ? { apikey: key, Authorization: `Bearer ${key}` } : { apikey: key }

type Answer = { data: unknown; error: { code?: string; message: string } | null; status: number }

/** The PostgREST client: it holds nothing per request, so the composition root builds one per isolate. */
export const postgrestClient = (options: { url: string; secretKey: string; timeoutMs: number }): PostgrestClient =>
  new PostgrestClient(`${options.url}/rest/v1`, {
    headers: supabaseHeaders(options.secretKey),
    fetch: (input, init) => fetchWithTimeout(String(input), init ?? {}, options.timeoutMs),
    // postgrest-js would retry reads itself (three times, sleeping up to 4 s on the real clock):
    // SupabaseStore decides what is retried, once, in one place.
    retry: false,
  })

/**
 * Whether the database holds this Worker's schema (`tiktok_connect_schema()`), asked once per
 * isolate: an `ok` is kept for the isolate's life, so a warm isolate pays nothing for it; `missing`
 * and `outdated` are asked again by the next unit of work, so applying the migration needs no
 * redeploy. Callers at the same moment share one question. One per isolate, built by the
 * composition root.
 */
export class SchemaCheck {
  readonly #client: PostgrestClient
  #ok = false
  #inflight: Promise<SchemaStatus> | undefined

  constructor(client: PostgrestClient) {
    this.#client = client
  }

  /** The schema's status; throws `storage_unavailable` when the database does not answer. */
  async status(log: Logger): Promise<SchemaStatus> {
    if (this.#ok) return 'ok'
    this.#inflight ??= this.#ask(log).finally(() => (this.#inflight = undefined))
    const status = await this.#inflight
    if (status === 'ok') this.#ok = true
    return status
  }

  /** Throws `misconfigured`, naming the file to apply, unless the schema is there. */
  async require(log: Logger): Promise<void> {
    const status = await this.status(log)
    if (status !== 'ok') throw new AppError('misconfigured', { reason: `schema_${status}`, detail: { apply: SCHEMA.file } })
  }

  // One attempt, never retried: a failure fails this unit of work, and the next one asks again.
  async #ask(log: Logger): Promise<SchemaStatus> {
    const started = Date.now()
    const answer = (await this.#client.rpc('tiktok_connect_schema', {})) as Answer
    const fields = { http_status: answer.status, duration_ms: Date.now() - started }
    if (answer.error && answer.error.code !== NO_SUCH_FUNCTION) {
      log.warn('supabase.schema', { ...fields, outcome: 'error', postgrest_code: answer.error.code, error: answer.error.message })
      throw new AppError('storage_unavailable', { detail: { event: 'supabase.schema', http_status: answer.status, postgrest_code: answer.error.code } })
    }
    const version = answer.error ? null : ((answer.data as { version?: unknown } | null)?.version ?? null)
    const status = answer.error ? 'missing' : typeof version === 'number' && version >= SCHEMA.version ? 'ok' : 'outdated'
    if (status === 'ok') log.info('supabase.schema', { ...fields, outcome: status, version })
    else log.warn('supabase.schema', { ...fields, outcome: status, version, needed: SCHEMA.version, apply: SCHEMA.file })
    return status
  }
}

/**
 * The Worker's view of the connector's tables, over PostgREST. Every change is one SQL function that
 * writes it with its event in one transaction. An operation that is safe to repeat (claims carry who
 * made them, the completion is checked against the claim, the others find their change already
 * made) is retried once when the first attempt got no answer or a 5xx; the two that are not say so.
 * The event a committed change wrote goes to `events` from here, so no caller can forget it. Before
 * its first call in an isolate, the store checks the schema: a database the migration never reached
 * answers `misconfigured` naming the file, not a storage outage.
 */
export class SupabaseStore {
  readonly #client: PostgrestClient
  readonly #log: Logger
  readonly #events: EventOutbox
  readonly #schema: SchemaCheck

  constructor(client: PostgrestClient, log: Logger, events: EventOutbox, schema: SchemaCheck) {
    this.#client = client
    this.#log = log
    this.#events = events
    this.#schema = schema
  }

  /** A change's answer, once committed: its event goes to the queue. */
  #committed<T extends { event_id: string | null }>(answer: T): T {
    this.#events.enqueue(answer.event_id)
    return answer
  }

  /** `POST /rpc/<name>`: every change, and the reads that are functions. */
  #rpc(name: string, args: Record<string, unknown>): PromiseLike<Answer> {
    return this.#client.rpc(name, args)
  }

  async #run(
    event: string,
    operation: () => PromiseLike<Answer>,
    tolerate: (error: Answer['error']) => boolean = () => false,
    attempts = ATTEMPTS,
  ): Promise<Answer> {
    await this.#schema.require(this.#log)
    for (let attempt = 1; ; attempt++) {
      const started = Date.now()
      const answer = await operation()
      const fields = { attempt, http_status: answer.status, duration_ms: Date.now() - started }
      if (!answer.error || tolerate(answer.error)) {
        this.#log.info(event, { ...fields, outcome: answer.error ? answer.error.code : 'ok' })
        return answer
      }
      // status 0: no answer at all (network failure or timeout).
      const transient = answer.status === 0 || answer.status >= 500
      this.#log.warn(event, { ...fields, outcome: 'error', postgrest_code: answer.error.code, error: answer.error.message })
      if (!transient || attempt >= attempts)
        throw new AppError('storage_unavailable', { detail: { event, http_status: answer.status, postgrest_code: answer.error.code } })
    }
  }

  /**
   * Claims a state for this request (`claimedBy` is generated by the Worker per request). The
   * database decides between racers and counts failed attempts; see `Claim`. A user deleted from
   * auth.users since its access token was issued has no session left to connect with.
   */
  async claimExchange(input: ClaimInput): Promise<Claim> {
    const answer = await this.#run(
      'supabase.claim',
      () =>
        this.#rpc('tiktok_claim_exchange', {
          p_state_nonce: input.nonce,
          p_user_id: input.userId,
          p_code_hash: input.codeHash,
          p_claimed_by: input.claimedBy,
        }),
      (error) => error?.code === FOREIGN_KEY_VIOLATION,
    )
    if (answer.error) throw new AppError('unauthorized', { reason: 'user_deleted' })
    return this.#outcome<Claim>('supabase.claim', answer.data, ['claimed', 'done', 'pending', 'used', 'locked'])
  }

  /**
   * Gives a failed claim back (counting the failure). `released`: the completion can no longer
   * commit; `done`: it committed before the release; `gone`: the claim is not this request's.
   */
  async releaseExchange(nonce: string, claimedBy: string): Promise<'released' | 'done' | 'gone'> {
    const answer = await this.#run('supabase.release', () => this.#rpc('tiktok_release_exchange', { p_state_nonce: nonce, p_claimed_by: claimedBy }))
    return this.#outcome<{ outcome: 'released' | 'done' | 'gone' }>('supabase.release', answer.data, ['released', 'done', 'gone']).outcome
  }

  /**
   * Stores the connection with `advertiserId` (one of `advertisers`) chosen, and marks the claim done,
   * in one transaction (`tiktok_complete_exchange`).
   */
  async completeExchange(input: {
    nonce: string
    userId: string
    claimedBy: string
    storedToken: string
    advertiserId: string
    advertisers: Advertiser[]
    returnTo: string
  }): Promise<Completed> {
    const answer = await this.#run('supabase.write', () =>
      this.#rpc('tiktok_complete_exchange', {
        p_state_nonce: input.nonce,
        p_user_id: input.userId,
        p_claimed_by: input.claimedBy,
        p_access_token: input.storedToken,
        p_advertiser_id: input.advertiserId,
        p_advertisers: input.advertisers,
        p_return_to: input.returnTo,
      }),
    )
    return this.#committed(this.#outcome<Completed>('supabase.write', answer.data, ['ok', 'claim_lost']))
  }

  /** An RPC's `{ outcome }` answer, checked against what the function can answer. */
  #outcome<T extends { outcome: string }>(event: string, data: unknown, known: readonly T['outcome'][]): T {
    const outcome = (data as { outcome?: unknown } | null)?.outcome
    if (typeof outcome === 'string' && (known as readonly string[]).includes(outcome)) return data as T
    throw new AppError('storage_unavailable', { detail: { event, unexpected: typeof outcome === 'string' ? outcome : typeof data } })
  }

  /** The user's connection; the token only when asked for. Undefined: not connected. */
  async readConnection(userId: string, withToken = false): Promise<ConnectionRow | undefined> {
    const columns = withToken ? `access_token,${CONNECTION_COLUMNS}` : CONNECTION_COLUMNS
    const answer = await this.#run('supabase.read', () => this.#client.from(CONNECTIONS).select(columns).eq('user_id', userId))
    return Array.isArray(answer.data) ? (answer.data[0] as ConnectionRow | undefined) : undefined
  }

  /**
   * The user picks an advertiser of the connection made at `connectedAt` (`tiktok_choose_advertiser`):
   * stored only if that connection is still the live one and lists the id. `event_id` is null when
   * the id was already the chosen one.
   */
  async chooseAdvertiser(userId: string, advertiserId: string, connectedAt: string): Promise<Chosen> {
    const answer = await this.#run('supabase.choose', () =>
      this.#rpc('tiktok_choose_advertiser', { p_user_id: userId, p_advertiser_id: advertiserId, p_connected_at: connectedAt }),
    )
    return this.#committed(this.#outcome<Chosen>('supabase.choose', answer.data, ['ok', 'not_allowed', 'stale', 'not_connected']))
  }

  /** TikTok refused the token of the connection made at `connectedAt`: marks it revoked once. */
  async markRevoked(userId: string, detectedBy: DetectedBy, code: number, connectedAt: string): Promise<Revoked> {
    const answer = await this.#run('supabase.mark_revoked', () =>
      this.#rpc('tiktok_mark_revoked', { p_user_id: userId, p_detected_by: detectedBy, p_code: code, p_connected_at: connectedAt }),
    )
    return this.#committed(this.#outcome<Revoked>('supabase.mark_revoked', answer.data, ['ok', 'already_revoked', 'stale', 'not_connected']))
  }

  /**
   * Forgets the connection made at `connectedAt` (null: whatever is stored). `revokedAtTikTok`: whether
   * TikTok confirmed the revocation; it goes into the event.
   */
  async disconnect(userId: string, revokedAtTikTok: boolean, connectedAt: string | null): Promise<Disconnected> {
    const answer = await this.#run('supabase.disconnect', () =>
      this.#rpc('tiktok_disconnect', { p_user_id: userId, p_revoked_at_tiktok: revokedAtTikTok, p_connected_at: connectedAt }),
    )
    return this.#committed(this.#outcome<Disconnected>('supabase.disconnect', answer.data, ['ok', 'not_connected', 'stale']))
  }

  /** The sweep's answer for one connection: TikTok's advertiser list for its token, fetched now. */
  async recordVerification(userId: string, connectedAt: string, advertisers: Advertiser[]): Promise<Verified> {
    const answer = await this.#run('supabase.verification', () =>
      this.#rpc('tiktok_record_verification', { p_user_id: userId, p_connected_at: connectedAt, p_advertisers: advertisers }),
    )
    return this.#committed(this.#outcome<Verified>('supabase.verification', answer.data, ['ok', 'advertiser_removed', 'revoked', 'stale']))
  }

  /** A proxied call TikTok answered with the token: recorded as verified, at most once per 10 minutes (the SQL decides). */
  async recordUse(userId: string, connectedAt: string): Promise<'recorded' | 'recent' | 'stale'> {
    const answer = await this.#run('supabase.record_use', () => this.#rpc('tiktok_record_use', { p_user_id: userId, p_connected_at: connectedAt }))
    return this.#outcome<{ outcome: 'recorded' | 'recent' | 'stale' }>('supabase.record_use', answer.data, ['recorded', 'recent', 'stale']).outcome
  }

  /**
   * The next live connections to check, least recently checked first, leased to this run. Not
   * retried: a repeat would lease a second batch and leave the first unchecked for a whole cycle.
   */
  async sweepBatch(limit: number): Promise<SweepItem[]> {
    const answer = await this.#run('supabase.sweep_batch', () => this.#rpc('tiktok_sweep_batch', { p_limit: limit }), undefined, 1)
    return this.#rows<SweepItem>('supabase.sweep_batch', answer.data)
  }

  /** Undelivered events created more than `olderThan` (a PostgreSQL interval) ago, oldest first. */
  async eventsToDeliver(olderThan: string, limit: number): Promise<PendingEvent[]> {
    const answer = await this.#run('supabase.events_to_deliver', () => this.#rpc('tiktok_events_to_deliver', { p_older_than: olderThan, p_limit: limit }))
    return this.#rows<PendingEvent>('supabase.events_to_deliver', answer.data)
  }

  /** An event to deliver; undefined when it was delivered meanwhile or is gone. */
  async eventForDelivery(id: string): Promise<StoredEvent | undefined> {
    const answer = await this.#run('supabase.event_read', () => this.#rpc('tiktok_event_for_delivery', { p_id: id }))
    const event = answer.data as Partial<StoredEvent> | null
    if (event === null) return undefined
    if (typeof event?.id !== 'string' || typeof event.type !== 'string' || typeof event.payload !== 'object' || event.payload === null)
      throw new AppError('storage_unavailable', { detail: { event: 'supabase.event_read', unexpected: typeof event } })
    return event as StoredEvent
  }

  /** The receiver accepted the event; repeating it changes nothing. */
  async markEventDelivered(id: string): Promise<'ok' | 'already_delivered' | 'not_found'> {
    const answer = await this.#run('supabase.event_delivered', () => this.#rpc('tiktok_mark_event_delivered', { p_id: id }))
    return this.#outcome<{ outcome: 'ok' | 'already_delivered' | 'not_found' }>('supabase.event_delivered', answer.data, [
      'ok',
      'already_delivered',
      'not_found',
    ]).outcome
  }

  /** Counts a failed delivery. Not retried: a repeat would count it twice. */
  async recordEventFailure(id: string, error: string): Promise<{ outcome: 'ok'; attempts: number } | { outcome: 'already_delivered' | 'not_found' }> {
    const answer = await this.#run('supabase.event_failure', () => this.#rpc('tiktok_record_event_failure', { p_id: id, p_error: error }), undefined, 1)
    return this.#outcome('supabase.event_failure', answer.data, ['ok', 'already_delivered', 'not_found'])
  }

  /** Deletes delivered events older than 30 days; answers how many. */
  async pruneEvents(): Promise<number> {
    const answer = await this.#run('supabase.prune', () => this.#rpc('tiktok_prune_events', {}))
    if (typeof answer.data !== 'number') throw new AppError('storage_unavailable', { detail: { event: 'supabase.prune', unexpected: typeof answer.data } })
    return answer.data
  }

  /** A set-returning function's rows. */
  #rows<T>(event: string, data: unknown): T[] {
    if (Array.isArray(data)) return data as T[]
    throw new AppError('storage_unavailable', { detail: { event, unexpected: typeof data } })
  }
}
