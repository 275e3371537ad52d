// Types for /oauth/tiktok-connect.js, the browser client of tiktok-connect-edge. Copy this file into
// your project (or point a `paths` entry at it) to type `import … from '/oauth/tiktok-connect.js'`.

/** One advertiser account TikTok shared. Ids are strings: they exceed 2^53. */
export interface Advertiser {
  id: string
  name: string
}

/** What `connectTikTok` resolves with: the connection as the Worker stored it. */
export interface Connection {
  /** The advertiser account the product uses; `null` while the user must choose again (see `ConnectionStatus.advertiser_required`). */
  advertiser: Advertiser | null
  /** Every advertiser account the grant covers. */
  advertisers: Advertiser[]
  /** When this connection was made (ISO 8601); it changes on every connect. */
  connected_at: string
}

/** `GET /api/tiktok/connection`, as `getConnection` answers it. */
export interface ConnectionStatus extends Omit<Connection, 'connected_at'> {
  connected: boolean
  connected_at: string | null
  /** Why it is not connected: never connected (or disconnected), or TikTok refused the stored access. */
  reason?: 'not_connected' | 'revoked'
  /** Connected, but the chosen advertiser is gone from TikTok's list: choose again with `chooseAdvertiser`. */
  advertiser_required?: true
  /** Present with `{ verify: true }`: TikTok was asked just now. */
  verified?: true
}

/**
 * Every failure: a stable `code` (the README's error table, plus the client's own `popup_closed`,
 * `popup_blocked`, `denied`, `network`, `invalid_return_to`, `signed_out`), and `message` written for
 * a person. `signed_out`: no access token (nobody signed in, or `getAccessToken` threw); after TikTok
 * said yes, it means the connection is stored but this page lost its session, and says so.
 */
export interface TikTokConnectError extends Error {
  code: string
  /** The HTTP status of the API answer; 0 when the failure did not come from one. */
  status: number
  /** Whether trying the same thing again later can help. */
  retryable: boolean
  /** The Worker's request id, for its logs. */
  requestId: string | undefined
}

/**
 * What `onEvent` receives, in this order:
 * `opened` (the popup opened, or the page is about to leave for TikTok: `mode` says which);
 * `authorized` (back from TikTok, the connection is stored); `advertiser_chosen` (the user picked
 * one of several advertiser accounts); `connected` (just before the promise resolves) or `error`
 * (just before it rejects); `closed` (the popup flow is over; always last).
 */
export type TikTokConnectEvent =
  | { type: 'opened'; mode: 'popup' | 'redirect' }
  | { type: 'authorized' }
  | { type: 'advertiser_chosen'; advertiser_id: string }
  | { type: 'connected'; connection: Connection }
  | { type: 'error'; code: string; message: string }
  | { type: 'closed' }

export interface ConnectOptions {
  /** The user's Supabase access token. */
  accessToken?: string | undefined
  /**
   * Called for a fresh token whenever one is needed; use it instead of `accessToken`. Answer
   * `undefined` (or throw) when nobody is signed in: the client rejects with `signed_out`. E.g.
   * `async () => (await supabase.auth.getSession()).data.session?.access_token`.
   */
  getAccessToken?: () => string | undefined | Promise<string | undefined>
  /** A path on this site the callback page goes to after a redirect; default `location.pathname`. */
  returnTo?: string
  /**
   * `auto` (default): a popup, or a full-page redirect when the browser blocks it. `popup`: a popup,
   * or the `popup_blocked` error. `redirect`: always leave the page for TikTok.
   */
  mode?: 'auto' | 'popup' | 'redirect'
  onEvent?: (event: TikTokConnectEvent) => void
}

/**
 * Connects the user's TikTok advertiser account. Call it directly in the click handler, before any
 * `await`: Safari and iOS allow a popup only there. A second call while the popup is open brings
 * it to the front and returns the same promise; once that popup is closed, a call starts a new flow
 * at once (the earlier promise rejects with `popup_closed`).
 *
 * Popup: resolves after the user authorized at TikTok (and chose an advertiser account, when TikTok
 * shared several); rejects with `code: 'popup_closed'` when the user closes the window first (within
 * a second on this product's own pages; up to 15 s at TikTok, whose pages may hide the window from
 * this one).
 * Redirect: the page leaves for TikTok and the promise never settles; back on `returnTo`, read the
 * result with `getConnection`.
 *
 * @example
 * button.addEventListener('click', () => {
 *   connectTikTok({ accessToken: session?.access_token })
 *     .then((connection) => show(connection))
 *     .catch((error) => error.code !== 'popup_closed' && alert(error.message))
 * })
 */
export function connectTikTok(options: ConnectOptions): Promise<Connection>

/**
 * The user's connection (`GET /api/tiktok/connection`). `{ verify: true }` also asks TikTok whether
 * the access still works, and records it as revoked when it does not. This and the wrappers below
 * reject with `signed_out`, sending nothing, when `token` is missing.
 */
export function getConnection(token: string | undefined, options?: { verify?: boolean }): Promise<ConnectionStatus>

/** Makes `advertiserId`, one of the connection's `advertisers`, the account the product uses (`POST /api/tiktok/advertiser`). */
export function chooseAdvertiser(
  token: string | undefined,
  advertiserId: string,
): Promise<{ success: true; advertiser: Advertiser; advertisers: Advertiser[]; message: string }>

/**
 * Revokes the access at TikTok and forgets the connection (`DELETE /api/tiktok/connection`).
 * `revoked` says whether TikTok confirmed; the connection is forgotten either way.
 */
export function disconnect(token: string | undefined): Promise<{ success: true; revoked: boolean; message: string }>
