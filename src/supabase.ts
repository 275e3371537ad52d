import { PostgrestClient } from '@supabase/postgrest-js'
import { AppError } from './errors'
import { fetchWithTimeout } from './http'
import type { Logger } from './log'
import type { Advertiser } from './tiktok'

const ACCOUNTS = 'user_accounts'
const EXCHANGES = 'tiktok_oauth_exchanges'
const ATTEMPTS = 2
// PostgreSQL's foreign_key_violation: a claim for a user that has no user_accounts row.
const FOREIGN_KEY_VIOLATION = '23503'

export const storageUnavailable = (detail: Record<string, unknown> = {}) =>
  new AppError(
    'storage_unavailable',
    502,
    'We could not reach the database to save your TikTok connection. Nothing was changed; please try again in a few minutes.',
    { retryable: true, detail },
  )

export const accountNotFound = () =>
  new AppError(
    'account_not_found',
    404,
    'Your account was not found, so the TikTok connection could not be saved. Sign out and in again, or contact support.',
  )

/** What the exchange answered, kept so a repeated submission gets the same answer. */
export type ExchangeResult = {
  business_id: string
  account_id: string
  advertisers: Advertiser[]
  return_to: string
}

export type ExchangeRow = {
  user_id: string
  code_hash: string
  claimed_by: string
  status: 'pending' | 'done'
  result: ExchangeResult | null
}

export type ConnectionRow = {
  tiktok_access_token?: string | null
  tiktok_business_id: string | null
  tiktok_account_id: string | null
  tiktok_advertisers: Advertiser[] | null
  tiktok_connected_at: string | null
  tiktok_revoked_at: string | null
}

const CONNECTION_COLUMNS = 'tiktok_business_id,tiktok_account_id,tiktok_advertisers,tiktok_connected_at,tiktok_revoked_at'

/** Legacy keys are JWTs and go as a bearer token too; Supabase refuses an `sb_secret_` key there. */
export const supabaseHeaders = (key: string): Record<string, string> =>
  key.startsWith('eyJ') ? { apikey: key, Authorization: `Bearer ${key}` } : { apikey: key }

type Answer = { data: unknown; error: { code?: string; message: string } | null; status: number }

/**
 * The Worker's view of the product database, over PostgREST. Every operation is safe to repeat
 * (claims carry who made them, the completion is checked against the claim), so each is retried
 * once when the first attempt got no answer or a 5xx.
 */
export class SupabaseStore {
  readonly #client: PostgrestClient
  readonly #log: Logger

  constructor(options: { url: string; secretKey: string; timeoutMs: number }, log: Logger) {
    this.#log = log
    this.#client = new PostgrestClient(`${options.url}/rest/v1`, {
      headers: supabaseHeaders(options.secretKey),
      fetch: (input, init) => fetchWithTimeout(String(input), init ?? {}, options.timeoutMs),
    })
  }

  async #run(event: string, operation: () => PromiseLike<Answer>, tolerate: (error: Answer['error']) => boolean = () => false): Promise<Answer> {
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
      if (!transient || attempt >= ATTEMPTS) throw storageUnavailable({ event, http_status: answer.status, postgrest_code: answer.error.code })
    }
  }

  /**
   * Claims a state for this request. `claimed` when this request's row is the one stored; otherwise
   * the row of the exchange that holds it (if it still exists). The primary key decides between racers.
   */
  async claimExchange(input: {
    nonce: string
    userId: string
    codeHash: string
    claimedBy: string
  }): Promise<{ claimed: true } | { claimed: false; row: ExchangeRow | undefined }> {
    const answer = await this.#run(
      'supabase.claim',
      () =>
        this.#client
          .from(EXCHANGES)
          .upsert(
            { state_nonce: input.nonce, user_id: input.userId, code_hash: input.codeHash, claimed_by: input.claimedBy },
            { onConflict: 'state_nonce', ignoreDuplicates: true },
          )
          .select('claimed_by'),
      (error) => error?.code === FOREIGN_KEY_VIOLATION,
    )
    if (answer.error) throw accountNotFound()
    if (Array.isArray(answer.data) && answer.data.length === 1) return { claimed: true }
    // A retried insert may find its own first attempt.
    const row = await this.readExchange(input.nonce)
    return row?.claimed_by === input.claimedBy ? { claimed: true } : { claimed: false, row }
  }

  async readExchange(nonce: string): Promise<ExchangeRow | undefined> {
    const answer = await this.#run('supabase.read_exchange', () =>
      this.#client.from(EXCHANGES).select('user_id,code_hash,claimed_by,status,result').eq('state_nonce', nonce),
    )
    return Array.isArray(answer.data) ? (answer.data[0] as ExchangeRow | undefined) : undefined
  }

  /** Gives a state back after a failed exchange, so the user can retry it; only this request's pending claim. */
  async releaseExchange(nonce: string, claimedBy: string): Promise<void> {
    await this.#run('supabase.release', () =>
      this.#client.from(EXCHANGES).delete().eq('state_nonce', nonce).eq('claimed_by', claimedBy).eq('status', 'pending'),
    )
  }

  /** Writes the connection and marks the claim done in one transaction (`tiktok_complete_exchange`). */
  async completeExchange(input: {
    nonce: string
    userId: string
    storedToken: string
    result: ExchangeResult
  }): Promise<'ok' | 'claim_lost' | 'account_not_found'> {
    const chosen = input.result
    const answer = await this.#run('supabase.write', () =>
      this.#client.rpc('tiktok_complete_exchange', {
        p_state_nonce: input.nonce,
        p_user_id: input.userId,
        p_access_token: input.storedToken,
        p_business_id: chosen.business_id,
        p_account_id: chosen.account_id,
        p_advertisers: chosen.advertisers,
        p_result: input.result,
      }),
    )
    if (answer.data === 'ok' || answer.data === 'claim_lost' || answer.data === 'account_not_found') return answer.data
    throw storageUnavailable({ event: 'supabase.write', unexpected: typeof answer.data })
  }

  /** The user's connection columns; the token only when asked for. Undefined: no such user. */
  async readConnection(userId: string, withToken = false): Promise<ConnectionRow | undefined> {
    const columns = withToken ? `tiktok_access_token,${CONNECTION_COLUMNS}` : CONNECTION_COLUMNS
    const answer = await this.#run('supabase.read', () => this.#client.from(ACCOUNTS).select(columns).eq('id', userId))
    return Array.isArray(answer.data) ? (answer.data[0] as ConnectionRow | undefined) : undefined
  }

  /** Changes the chosen advertiser of a live connection; false when there is none to change. */
  async chooseAdvertiser(userId: string, advertiser: Advertiser): Promise<boolean> {
    const answer = await this.#run('supabase.choose', () =>
      this.#client
        .from(ACCOUNTS)
        .update({ tiktok_business_id: advertiser.id, tiktok_account_id: advertiser.name })
        .eq('id', userId)
        .not('tiktok_connected_at', 'is', null)
        .select('id'),
    )
    return Array.isArray(answer.data) && answer.data.length > 0
  }

  async markRevoked(userId: string): Promise<void> {
    await this.#run('supabase.mark_revoked', () =>
      this.#client.from(ACCOUNTS).update({ tiktok_revoked_at: new Date().toISOString() }).eq('id', userId),
    )
  }

  /** Forgets the connection entirely; false when the user has no row. */
  async clearConnection(userId: string): Promise<boolean> {
    const answer = await this.#run('supabase.clear', () =>
      this.#client
        .from(ACCOUNTS)
        .update({
          tiktok_access_token: null,
          tiktok_business_id: null,
          tiktok_account_id: null,
          tiktok_advertisers: null,
          tiktok_connected_at: null,
          tiktok_revoked_at: null,
        })
        .eq('id', userId)
        .select('id'),
    )
    return Array.isArray(answer.data) && answer.data.length > 0
  }
}
