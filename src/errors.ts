import type { ContentfulStatusCode } from 'hono/utils/http-status'

/**
 * Every failure this Worker answers on purpose. `message` is shown to a person; `detail` is for the
 * logs only and must never hold a secret.
 */
export class AppError extends Error {
  readonly code: string
  readonly status: ContentfulStatusCode
  readonly retryable: boolean
  readonly detail: Record<string, unknown> | undefined
  /** Headers the answer carries, such as `Allow` or `Retry-After`. */
  readonly headers: Record<string, string> | undefined

  constructor(
    code: string,
    status: ContentfulStatusCode,
    message: string,
    options: { retryable?: boolean; detail?: Record<string, unknown>; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause })
    this.name = 'AppError'
    this.code = code
    this.status = status
    this.retryable = options.retryable ?? false
    this.detail = options.detail
    this.headers = options.headers
  }
}

export const errors = {
  misconfigured: (names: string[]) =>
    new AppError(
      'misconfigured',
      500,
      'This TikTok connection service is not configured yet. Please tell the site operator; nothing was changed.',
      { detail: { settings: names } },
    ),
  invalidRequest: (message: string) => new AppError('invalid_request', 400, message),
  unauthorized: (reason: string) =>
    new AppError('unauthorized', 401, 'Your session is missing or has expired. Sign in again, then retry.', {
      detail: { reason },
    }),
  authUnavailable: (cause?: unknown) =>
    new AppError('auth_unavailable', 503, 'We could not check your sign-in right now. Please try again in a moment.', {
      retryable: true,
      cause,
    }),
  originNotAllowed: (origin: string) =>
    new AppError('origin_not_allowed', 403, 'This site is not allowed to connect TikTok accounts through this service.', {
      detail: { origin },
    }),
  invalidReturnTo: () =>
    new AppError('invalid_return_to', 400, 'The return address must be a path on this site, such as /profile.'),
  invalidState: (reason: string) =>
    new AppError('invalid_state', 400, 'This TikTok authorization link is not valid. Start the connection again from your profile.', {
      detail: { reason },
    }),
  stateExpired: () =>
    new AppError('state_expired', 400, 'This TikTok authorization took too long and expired. Start the connection again.'),
  stateNotBound: (reason: string) =>
    new AppError(
      'state_not_bound',
      403,
      'This authorization was started in another browser or tab. Start the connection again from this browser.',
      { detail: { reason } },
    ),
  stateUsed: () =>
    new AppError('state_used', 409, 'This TikTok authorization was already used. Start the connection again from your profile.'),
  stateLocked: () =>
    new AppError('state_locked', 409, 'This TikTok authorization failed too many times. Start the connection again from your profile.'),
  exchangeInProgress: () =>
    new AppError('exchange_in_progress', 409, 'This TikTok connection is still being completed in another tab. Wait a moment, then check your profile.', {
      retryable: true,
    }),
  rateLimited: (scope: string, retryAfterSeconds: number) =>
    new AppError('rate_limited', 429, `Too many attempts. Wait ${retryAfterSeconds} seconds, then try again.`, {
      retryable: true,
      detail: { scope },
      headers: { 'Retry-After': String(retryAfterSeconds) },
    }),
  methodNotAllowed: (allow: string) =>
    new AppError('method_not_allowed', 405, `This endpoint does not accept that HTTP method; it accepts ${allow}.`, {
      headers: { Allow: allow },
    }),
} as const
