import type { Clock } from './clock'
import { type Quota, QuotaRefused } from './quota/client'
import { fetchWithTimeout, idString, NetworkError, parseJsonExact } from './http'
import type { Logger } from './log'

/** TikTok API for Business v1.3 paths; the trailing slash is part of the contract. */
const TOKEN_PATH = '/oauth2/access_token/'
const ADVERTISERS_PATH = '/oauth2/advertiser/get/'
const REVOKE_PATH = '/oauth2/revoke_token/'
const ADVERTISER_ATTEMPTS = 3
/** The advertiser list's backoff: this, times the attempt that failed. */
export const RETRY_DELAY_MS = 250

/** TikTok's answer to a proxied call, untouched; `code` is the envelope's, when the body is one. */
export type Forwarded = { status: number; contentType: string | null; body: ArrayBuffer; code: number | undefined }

/** The grant's ids (advertiser_ids, scope) are not used: the advertiser list has the ids and names. */
export type TikTokGrant = { accessToken: string }
export type Advertiser = { id: string; name: string }

type Envelope = { code: number; message: string; requestId: string | undefined; data: unknown }

/**
 * What TikTok's answer meant, for the callers to act on: `rate_limited` (the app's or one
 * advertiser's quota), `token_rejected` (the token is revoked or invalid), `code_rejected` (the auth
 * code is expired or used), `permission_denied` (a scope the advertiser did not grant),
 * `misconfigured` (the app id, secret or redirect), `unavailable` (TikTok's own "try later", a
 * network failure, a 5xx: a read may be tried again), `timeout` (no answer in time: the call may
 * still run), `bad_answer` (not TikTok's envelope, or not the shape this client reads), `refused`
 * (any other code).
 */
export type TikTokErrorKind =
  | 'rate_limited'
  | 'token_rejected'
  | 'code_rejected'
  | 'permission_denied'
  | 'misconfigured'
  | 'unavailable'
  | 'timeout'
  | 'bad_answer'
  | 'refused'

const KIND_OF_CODE = new Map<number, TikTokErrorKind>([
  ...[40100, 40016, 40133].map((code) => [code, 'rate_limited'] as const),
  ...[40105, 40102].map((code) => [code, 'token_rejected'] as const),
  ...[40110, 40115].map((code) => [code, 'code_rejected'] as const),
  [40001, 'permission_denied'],
  ...[40000, 40101, 40113, 40104].map((code) => [code, 'misconfigured'] as const),
  ...[50000, 50002, 51001, 60001].map((code) => [code, 'unavailable'] as const),
])

/** What TikTok's envelope `code` means, for answers passed through (the proxy's); undefined for 0 and no code. */
export const kindOfCode = (code: number | undefined): TikTokErrorKind | undefined =>
  code === undefined || code === 0 ? undefined : (KIND_OF_CODE.get(code) ?? 'refused')

/** TikTok did not do what was asked; `code` and `requestId` are TikTok's, when it answered with them. */
export class TikTokError extends Error {
  readonly kind: TikTokErrorKind
  readonly code: number | undefined
  readonly requestId: string | undefined
  /** For the log: what was wrong with the answer (`network`, `http_503`, `bad_envelope`, …). */
  readonly reason: string | undefined
  /** With the quota's own refusal: when a permit may be free. */
  readonly retryAfterMs: number | undefined

  constructor(kind: TikTokErrorKind, details: { code?: number; requestId?: string; reason?: string; retryAfterMs?: number; cause?: unknown } = {}) {
    super(`TikTok: ${kind}${details.code !== undefined ? ` (${details.code})` : details.reason ? ` (${details.reason})` : ''}`, { cause: details.cause })
    this.name = 'TikTokError'
    this.kind = kind
    this.code = details.code
    this.requestId = details.requestId
    this.reason = details.reason
    this.retryAfterMs = details.retryAfterMs
  }

  static fromCode(code: number, requestId?: string): TikTokError {
    return new TikTokError(kindOfCode(code) ?? 'refused', { code, requestId })
  }
}

/**
 * What a read may try again: TikTok's own "try later", a network failure, a 5xx. Never a rate-limit
 * answer (the quota is the app's: a retry spends more of what every tenant shares), a timeout (the
 * call may still be running), or an answer of the wrong shape (it will not change).
 */
const isTransient = (error: unknown): boolean => error instanceof TikTokError && error.kind === 'unavailable'

const asRecord = (value: unknown): Record<string, unknown> | undefined =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined

/** The envelope's `code` in a body that may not be JSON at all. */
const codeIn = (text: string): number | undefined => {
  try {
    const code = asRecord(JSON.parse(text))?.code
    return typeof code === 'number' ? code : undefined
  } catch {
    return undefined
  }
}

/** One thin client per flow: explicit envelope checks, exact ids, no hidden retries of the exchange. */
export class TikTokClient {
  readonly #options: { appId: string; appSecret: string; apiBase: string; timeoutMs: number }
  readonly #log: Logger
  readonly #clock: Clock
  readonly #quota: Quota
  /** Permits asked for ahead, and until when (after the slot) they cover a call. */
  #prepaid: { permits: number; granted: Promise<{ id: number | undefined; until: number }> } | undefined

  constructor(options: { appId: string; appSecret: string; apiBase: string; timeoutMs: number }, log: Logger, clock: Clock, quota: Quota) {
    this.#options = options
    this.#log = log
    this.#clock = clock
    this.#quota = quota
  }

  /** The same client taking its permits at another priority: the sweep's calls, the proxy's. */
  at(priority: 'proxy' | 'sweep'): TikTokClient {
    return new TikTokClient(this.#options, this.#log, this.#clock, this.#quota.at(priority))
  }

  /**
   * Asks the governor now for the permits of calls this client will make one after another (an
   * OAuth flow's exchange and advertiser list), so a caller can ask alongside work it waits for
   * anyway; those calls then take them instead of asking one by one.
   */
  prepay(permits: number, useWithinMs: number): void {
    // Resolves once the slot has come (the wait slept), to the end of the permits' span.
    const granted = this.#quota.take(permits, { useWithinMs, cancellable: true }).then((id) => ({ id, until: this.#clock.now() + useWithinMs }))
    // A refusal surfaces when a call takes its permit, not here.
    granted.catch(() => undefined)
    this.#prepaid = { permits, granted }
  }

  /** Gives the prepaid permits back when none was used (no call followed): the app's budget keeps them otherwise. */
  async releasePrepaid(): Promise<void> {
    const prepaid = this.#prepaid
    if (!prepaid) return
    this.#prepaid = undefined
    const granted = await prepaid.granted.catch(() => undefined)
    if (granted?.id !== undefined) await this.#quota.release(granted.id)
  }

  /** One permit for the next call: a prepaid one, or the governor's. Refused: TikTok's quota, as a rate limit. */
  async #permit(advertiserId?: string, maxWaitMs?: number): Promise<void> {
    try {
      if (this.#prepaid && this.#prepaid.permits > 0) {
        this.#prepaid.permits--
        // A call after the span (TikTok slow to answer the one before) is not covered: it asks anew.
        if (this.#clock.now() <= (await this.#prepaid.granted).until) return
      }
      await this.#quota.take(1, { advertiserId, maxWaitMs })
    } catch (error) {
      if (!(error instanceof QuotaRefused)) throw error
      this.#log.warn('quota.refused', { priority: this.#quota.priority, retry_after_ms: error.retryAfterMs })
      throw new TikTokError('rate_limited', { reason: 'quota', retryAfterMs: error.retryAfterMs, cause: error })
    }
  }

  /** TikTok's own throttle on a call sent at `sentAt`: the governor backs the whole app (or one advertiser) off. */
  async #reportIfThrottled(code: number | undefined, sentAt: number, advertiserId?: string): Promise<void> {
    if (code !== undefined && kindOfCode(code) === 'rate_limited') await this.#quota.reportThrottle(code, sentAt, advertiserId)
  }

  /** Exchanges a single-use auth code. Never retried: TikTok may already have consumed the code. */
  async exchangeCode(authCode: string): Promise<TikTokGrant> {
    const envelope = await this.#call('tiktok.token_exchange', this.#options.apiBase + TOKEN_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ app_id: this.#options.appId, secret: this.#options.appSecret, auth_code: authCode }),
    })
    const data = asRecord(envelope.data)
    const accessToken = data?.access_token
    if (typeof accessToken !== 'string' || accessToken.length === 0) throw new TikTokError('bad_answer', { reason: 'no_access_token' })
    this.#log.protect(accessToken)
    return { accessToken }
  }

  /**
   * Lists the advertisers the token may manage. Read-only, so a bounded retry is safe; the sweep asks
   * for one attempt, since it would rather stop than spend the app's quota on retries.
   */
  async listAdvertisers(accessToken: string, attempts = ADVERTISER_ATTEMPTS): Promise<Advertiser[]> {
    const query = new URLSearchParams({ app_id: this.#options.appId, secret: this.#options.appSecret })
    const url = `${this.#options.apiBase}${ADVERTISERS_PATH}?${query}`
    for (let attempt = 1; ; attempt++) {
      try {
        const envelope = await this.#call(
          'tiktok.advertisers',
          url,
          { method: 'GET', headers: { 'Access-Token': accessToken, accept: 'application/json' } },
          { attempt, exactIds: true },
        )
        const list = asRecord(envelope.data)?.list
        if (!Array.isArray(list)) throw new TikTokError('bad_answer', { reason: 'no_advertiser_list' })
        const advertisers = list.flatMap((item) => {
          const record = asRecord(item)
          const id = idString(record?.advertiser_id)
          if (!id) return []
          const name = record?.advertiser_name
          return [{ id, name: typeof name === 'string' ? name : '' }]
        })
        // An entry that is there but unreadable is a changed answer, not an advertiser gone: read as
        // missing, the sweep would clear a choice, or revoke every connection when none reads.
        if (advertisers.length < list.length) {
          const reason = advertisers.length === 0 ? 'no_readable_advertiser' : 'unreadable_advertiser'
          this.#log.warn('tiktok.advertisers', { outcome: 'bad_envelope', reason, entries: list.length, readable: advertisers.length })
          throw new TikTokError('bad_answer', { reason })
        }
        return advertisers
      } catch (error) {
        if (!(isTransient(error) && attempt < attempts)) throw error
        await this.#clock.sleep(RETRY_DELAY_MS * attempt)
      }
    }
  }

  /**
   * Revokes a token. True when TikTok confirmed it, or said the token was already invalid; false when
   * the answer leaves it unknown (TikTok unreachable or another error). `reason` goes into the log.
   */
  async revokeToken(accessToken: string, reason: string): Promise<boolean> {
    try {
      await this.#call(
        'tiktok.revoke',
        this.#options.apiBase + REVOKE_PATH,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json' },
          body: JSON.stringify({ app_id: this.#options.appId, secret: this.#options.appSecret, access_token: accessToken }),
        },
        { reason },
      )
      return true
    } catch (error) {
      // Already invalid at TikTok: revoked all the same.
      return error instanceof TikTokError && error.kind === 'token_rejected'
    }
  }

  /**
   * A product backend's call through the proxy: `path` below `/open_api/v1.3/` (checked by the
   * caller), the query as sent, the body's bytes for a POST. TikTok's answer comes back as TikTok
   * sent it (status, bytes, content type), with the envelope's `code` read when there is one. Only
   * `Access-Token` goes with it: never the app's secret, nothing of the caller's other headers.
   */
  async forward(call: {
    method: 'GET' | 'POST'
    path: string
    query: string
    body?: ArrayBuffer
    accessToken: string
    /** Whose data it reads: the call also waits out that advertiser's back-off (40133). */
    advertiserId?: string
    /** At most this long for a permit (a retry has what is left of the proxy's wait). */
    maxWaitMs?: number
  }): Promise<Forwarded> {
    await this.#permit(call.advertiserId, call.maxWaitMs)
    const started = Date.now()
    const log = (outcome: string, fields: Record<string, unknown>) =>
      this.#log[outcome === 'ok' ? 'info' : 'warn']('tiktok.proxy', { outcome, path: call.path, duration_ms: Date.now() - started, ...fields })
    const headers: Record<string, string> = { 'Access-Token': call.accessToken, accept: 'application/json' }
    if (call.method === 'POST') headers['content-type'] = 'application/json'
    const url = `${this.#options.apiBase}/${call.path}${call.query}`
    // A redirect is passed back, never followed: it would carry the connection's token elsewhere.
    const { response, body, sentAt } = await this.#send(url, { method: call.method, headers, body: call.body }, (answer) => answer.arrayBuffer(), log)
    const code = codeIn(new TextDecoder().decode(body))
    await this.#reportIfThrottled(code, sentAt, call.advertiserId)
    log(code === 0 ? 'ok' : code === undefined ? 'no_envelope' : 'tiktok_error', { http_status: response.status, tiktok_code: code })
    return { status: response.status, contentType: response.headers.get('content-type'), body, code }
  }

  /**
   * One API call and its envelope. `exactIds` for an answer whose ids are read: the exact parse pays a
   * reviver call per value, and the other answers (a token, a confirmation) carry no id this reads.
   */
  async #call(event: string, url: string, init: RequestInit, context: { attempt?: number; reason?: string; exactIds?: boolean } = {}): Promise<Envelope> {
    const started = Date.now()
    const log = (outcome: string, fields: Record<string, unknown>) =>
      this.#log[outcome === 'ok' ? 'info' : 'warn'](event, {
        outcome,
        attempt: context.attempt ?? 1,
        ...(context.reason && { reason: context.reason }),
        duration_ms: Date.now() - started,
        ...fields,
      })

    await this.#permit()
    const { response, body: text, sentAt } = await this.#send(url, init, (answer) => answer.text(), log)
    if (!response.ok) {
      log('http_error', { http_status: response.status })
      // A rate-limit code is one whatever the status came with: never read as "try again".
      const code = codeIn(text)
      await this.#reportIfThrottled(code, sentAt)
      if (code !== undefined && kindOfCode(code) === 'rate_limited') throw TikTokError.fromCode(code)
      throw new TikTokError(response.status >= 500 ? 'unavailable' : 'bad_answer', { reason: `http_${response.status}` })
    }
    let body: Record<string, unknown> | undefined
    try {
      body = asRecord(context.exactIds ? parseJsonExact(text) : JSON.parse(text))
    } catch {
      body = undefined
    }
    const code = typeof body?.code === 'number' ? body.code : undefined
    if (!body || code === undefined) {
      log('bad_envelope', { http_status: response.status, content_type: response.headers.get('content-type') })
      throw new TikTokError('bad_answer', { reason: 'bad_envelope' })
    }
    const envelope: Envelope = {
      code,
      message: typeof body.message === 'string' ? body.message.slice(0, 200) : '',
      requestId: typeof body.request_id === 'string' ? body.request_id : undefined,
      data: body.data,
    }
    const fields = { tiktok_code: envelope.code, tiktok_request_id: envelope.requestId }
    if (envelope.code !== 0) {
      log('tiktok_error', { ...fields, tiktok_message: envelope.message })
      await this.#reportIfThrottled(envelope.code, sentAt)
      throw TikTokError.fromCode(envelope.code, envelope.requestId)
    }
    log('ok', fields)
    return envelope
  }

  /**
   * One request under the deadline, its body read whole by `read`. A failure on the way is logged
   * and thrown as a TikTokError: a timeout (never retried: the call may still be running) or
   * `unavailable`. `sentAt` is on the quota's clock, for a throttle reported against its window.
   */
  async #send<Body>(
    url: string,
    init: RequestInit,
    read: (response: Response) => Promise<Body>,
    log: (outcome: string, fields: Record<string, unknown>) => void,
  ): Promise<{ response: Response; body: Body; sentAt: number }> {
    const fail = (error: unknown, timedOut: boolean): never => {
      log(timedOut ? 'timeout' : 'network_error', { error })
      throw new TikTokError(timedOut ? 'timeout' : 'unavailable', { reason: timedOut ? 'timeout' : 'network', cause: error })
    }
    const sentAt = this.#clock.now()
    let response: Response
    try {
      // Never followed: a redirect would carry the token, the app's secret or the code elsewhere.
      response = await fetchWithTimeout(url, { ...init, redirect: 'manual' }, this.#options.timeoutMs)
    } catch (error) {
      return fail(error, error instanceof NetworkError && error.timedOut)
    }
    try {
      return { response, body: await read(response), sentAt }
    } catch (error) {
      // The deadline also bounds the body: cut off there, it is a timeout (not retried), not garbage.
      return fail(error, error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    }
  }
}
