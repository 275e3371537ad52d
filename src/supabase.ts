import { PostgrestClient } from '@supabase/postgrest-js'
import { AppError } from './errors'
import { fetchWithTimeout } from './http'
import type { Logger } from './log'

export type Connection = {
  accessToken: string
  businessId: string
  accountName: string
}

const TABLE = 'user_accounts'
const WRITE_ATTEMPTS = 2

const storageUnavailable = (detail: Record<string, unknown>, cause?: unknown) =>
  new AppError(
    'storage_unavailable',
    502,
    'We could not save your TikTok connection. Nothing was changed; please try connecting again in a few minutes.',
    { retryable: true, detail, cause },
  )

/** Legacy keys are JWTs and go as a bearer token too; Supabase refuses an `sb_secret_` key there. */
export const supabaseHeaders = (key: string): Record<string, string> =>
  key.startsWith('eyJ') ? { apikey: key, Authorization: `Bearer ${key}` } : { apikey: key }

/** Writes the connection onto the user's existing `user_accounts` row through PostgREST. */
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

  /**
   * PATCH with `return=representation`, because PostgREST answers success when the filter matched
   * no row: only the returned rows tell "written" from "no such user". Repeating the same PATCH is
   * harmless, so one failed attempt is retried.
   */
  async saveConnection(userId: string, connection: Connection): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const started = Date.now()
      const { data, error, status } = await this.#client
        .from(TABLE)
        .update({
          tiktok_access_token: connection.accessToken,
          tiktok_business_id: connection.businessId,
          tiktok_account_id: connection.accountName,
        })
        .eq('id', userId)
        .select('id')
      const fields = { attempt, http_status: status, duration_ms: Date.now() - started }
      if (!error) {
        const rows = Array.isArray(data) ? data.length : 0
        this.#log[rows === 1 ? 'info' : 'warn']('supabase.write', { ...fields, outcome: rows ? 'ok' : 'no_row', rows })
        if (rows === 0)
          throw new AppError(
            'account_not_found',
            404,
            'Your account was not found, so the TikTok connection could not be saved. Sign out and in again, or contact support.',
          )
        return
      }
      // status 0: the request never got an answer (network failure or timeout).
      const transient = status === 0 || status >= 500
      this.#log.warn('supabase.write', { ...fields, outcome: 'error', postgrest_code: error.code, error: error.message })
      if (!transient || attempt >= WRITE_ATTEMPTS)
        throw storageUnavailable({ http_status: status, postgrest_code: error.code })
    }
  }
}
