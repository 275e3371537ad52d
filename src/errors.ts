import { TikTokError, type TikTokErrorKind } from './tiktok'

/** The statuses this Worker answers failures with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503 | 504

type Spec = { status: ErrorStatus; message: string; retryable?: true }

/**
 * Every failure this Worker answers on purpose: its status, whether retrying the same request can
 * help, and the sentence a person reads (a call site may give a more precise one). docs/api.md's
 * error table lists exactly these codes.
 */
const TABLE = {
  invalid_request: { status: 400, message: 'The request is not valid.' },
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  invalid_return_to: { status: 400, message: 'The return address must be a path on this site, such as /profile.' },
  invalid_state: { status: 400, message: 'This TikTok authorization link is not valid. Start the connection again from your profile.' },
  state_expired: { status: 400, message: 'This TikTok authorization took too long and expired. Start the connection again.' },
  code_invalid_or_used: { status: 400, message: 'This TikTok authorization has expired or was already used. Start the connection again.' },
  invalid_ticket: { status: 400, message: 'This advertiser choice is not valid any more. Choose the advertiser again from your profile.' },
  ticket_expired: { status: 400, message: 'The time to choose an advertiser ran out. Choose it again from your profile, or connect TikTok again.' },
  unauthorized: { status: 401, message: 'Your session is missing or has expired. Sign in again, then retry.' },
  origin_not_allowed: { status: 403, message: 'This site is not allowed to connect TikTok accounts through this service.' },
  state_not_bound: {
    status: 403,
    message: 'This authorization was started in another browser or tab. Start the connection again from this browser.',
  },
  tiktok_permission_denied: {
    status: 403,
    message: 'TikTok did not grant a permission this product needs. Connect again and allow every requested permission.',
  },
  path_not_allowed: {
    status: 403,
    message: 'The proxy passes TikTok Marketing API paths below /open_api/v1.3/ only, never OAuth endpoints or encoded or dot segments.',
  },
  advertiser_not_allowed: {
    status: 403,
    message: 'This advertiser account is not one TikTok shared with your connection. Pick one from the list.',
  },
  ticket_not_bound: {
    status: 403,
    message: 'This advertiser choice was opened in another browser. Choose the advertiser from your profile in this browser.',
  },
  not_connected: { status: 404, message: 'No TikTok account is connected. Connect TikTok first, then choose an advertiser.' },
  not_found: { status: 404, message: 'There is no such endpoint.' },
  method_not_allowed: { status: 405, message: 'This endpoint does not accept that HTTP method.' },
  connection_revoked: {
    status: 409,
    message: "This user's TikTok connection was revoked at TikTok. The user must connect TikTok again.",
  },
  state_used: { status: 409, message: 'This TikTok authorization was already used. Start the connection again from your profile.' },
  state_locked: { status: 409, message: 'This TikTok authorization failed too many times. Start the connection again from your profile.' },
  connection_changed: {
    status: 409,
    message: 'A new TikTok connection was made while this one was being disconnected, and it is still connected. Disconnect again to remove it.',
  },
  exchange_in_progress: {
    status: 409,
    retryable: true,
    message: 'This TikTok connection is still being completed in another tab. Wait a moment, then check your profile.',
  },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  unsupported_media_type: { status: 415, message: 'Send the request body as JSON, with Content-Type: application/json.' },
  no_advertisers: {
    status: 422,
    message: 'TikTok did not share any advertiser account. Connect again and select at least one advertiser account.',
  },
  rate_limited: { status: 429, retryable: true, message: 'Too many attempts. Wait a minute, then try again.' },
  tiktok_rate_limited: {
    status: 429,
    retryable: true,
    message: 'TikTok is receiving too many requests right now. Wait a minute, then connect again.',
  },
  tiktok_quota_exhausted: {
    status: 429,
    retryable: true,
    message: "The app's TikTok quota is used up for now. Retry after the time in Retry-After.",
  },
  misconfigured: {
    status: 500,
    message: 'This TikTok connection service is not configured yet. Please tell the site operator; nothing was changed.',
  },
  token_unreadable: {
    status: 500,
    message: 'Your stored TikTok connection cannot be read with the current settings. Please tell the site operator, or disconnect and connect again.',
  },
  internal_error: {
    status: 500,
    message: 'Something went wrong on our side. Please try again; if it keeps happening, contact support.',
  },
  tiktok_unavailable: { status: 502, retryable: true, message: 'TikTok is temporarily unavailable. Try connecting again in a few minutes.' },
  tiktok_misconfigured: {
    status: 502,
    message: "TikTok refused this site's app settings. Please tell the site operator; your account was not changed.",
  },
  tiktok_token_rejected: { status: 502, message: 'TikTok rejected the access it had just granted. Start the connection again.' },
  tiktok_error: { status: 502, message: 'TikTok refused the request. Try again, and contact support if it keeps happening.' },
  storage_unavailable: {
    status: 502,
    retryable: true,
    message: 'We could not reach the database to save your TikTok connection. Nothing was changed; please try again in a few minutes.',
  },
  auth_unavailable: { status: 503, retryable: true, message: 'We could not check your sign-in right now. Please try again in a moment.' },
} as const satisfies Record<string, Spec>

export type ErrorCode = keyof typeof TABLE
export const ERROR_CODES = Object.keys(TABLE) as ErrorCode[]

type Options = {
  /** A more precise sentence for a person than the table's. */
  message?: string
  /** Why, in a word, for the log (`detail.reason`). */
  reason?: string
  /** For 405: the methods the endpoint takes, answered in `Allow` and in the sentence. */
  allow?: string
  /** Only where one code has two statuses (a TikTok timeout is 504, not 502). */
  status?: ErrorStatus
  /** For the logs only; must never hold a secret. */
  detail?: Record<string, unknown>
  cause?: unknown
  /** Headers the answer carries, such as `Allow` or `Retry-After`. */
  headers?: Record<string, string>
}

/**
 * A failure answered on purpose, and the one way errors are made: `new AppError(code, { reason })`,
 * thrown anywhere, turned into the JSON envelope in `onError`.
 */
export class AppError extends Error {
  readonly code: ErrorCode
  readonly status: ErrorStatus
  readonly retryable: boolean
  readonly detail: Record<string, unknown> | undefined
  readonly headers: Record<string, string> | undefined

  constructor(code: ErrorCode, options: Options = {}) {
    const spec: Spec = TABLE[code]
    const message = options.allow ? `This endpoint does not accept that HTTP method; it accepts ${options.allow}.` : spec.message
    super(options.message ?? message, { cause: options.cause })
    this.name = 'AppError'
    this.code = code
    this.status = options.status ?? spec.status
    this.retryable = spec.retryable ?? false
    this.detail = options.reason === undefined ? options.detail : { reason: options.reason, ...options.detail }
    this.headers = options.allow ? { Allow: options.allow, ...options.headers } : options.headers
  }
}

/** The answer for each kind of TikTok failure: the one place TikTok's outcomes become this API's. */
const TIKTOK_ANSWERS: Record<TikTokErrorKind, { code: ErrorCode; status?: ErrorStatus }> = {
  rate_limited: { code: 'tiktok_rate_limited' },
  token_rejected: { code: 'tiktok_token_rejected' },
  code_rejected: { code: 'code_invalid_or_used' },
  permission_denied: { code: 'tiktok_permission_denied' },
  misconfigured: { code: 'tiktok_misconfigured' },
  unavailable: { code: 'tiktok_unavailable' },
  timeout: { code: 'tiktok_unavailable', status: 504 },
  bad_answer: { code: 'tiktok_unavailable' },
  refused: { code: 'tiktok_error' },
}

/** A TikTok failure as this API answers it; TikTok's code and request id stay in the log. */
export function tiktokAnswer(error: TikTokError): AppError {
  const { code, status } = TIKTOK_ANSWERS[error.kind]
  return new AppError(code, {
    status,
    detail: { tiktok_kind: error.kind, tiktok_code: error.code, tiktok_request_id: error.requestId, reason: error.reason },
    cause: error,
  })
}

/** Any failure as this API answers it: an AppError as it is, TikTok's by its kind, anything else a generic 500. */
export const answerFor = (error: unknown): AppError =>
  error instanceof AppError ? error : error instanceof TikTokError ? tiktokAnswer(error) : new AppError('internal_error', { cause: error })
