// tiktok-connect.js: connect TikTok from a product page in one call (README: "Integrating"). The popup
// and this page talk over a BroadcastChannel named by a random flow id that this page writes into
// the popup's own sessionStorage: the callback's COOP cuts the window handle, and no URL carries it.

const API = '/api/tiktok'
const FLOW_KEY = 'tiktok_connect_flow'
// The state's lifetime: after it, the callback cannot complete this flow anyway.
const FLOW_TTL_MS = 600_000
const POLL_MS = 500
// Long enough for the callback page to answer once it has spoken; before that, it may still be
// loading (a slow phone), or TikTok's own pages may cut the handle (COOP) while the user is there.
const GRACE_MS = 2500
const FIRST_GRACE_MS = 15_000

let active

const failure = (code, message, more) =>
  Object.assign(new Error(message), { code, status: 0, retryable: false, requestId: undefined }, more)

async function call(token, method, path, body) {
  let response
  try {
    response = await fetch(API + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body && { 'content-type': 'application/json' }) },
      body: body && JSON.stringify(body),
      cache: 'no-store',
      signal: AbortSignal.timeout(30_000),
    })
  } catch (cause) {
    throw failure('network', 'Could not reach the server. Check your connection, then try again.', { retryable: true, cause })
  }
  const answer = await response.json().catch(() => ({}))
  if (response.ok) return answer
  throw failure(
    typeof answer.code == 'string' ? answer.code : `http_${response.status}`,
    typeof answer.error == 'string' ? answer.error : `The server answered HTTP ${response.status}.`,
    { status: response.status, retryable: answer.retryable === true, requestId: answer.request_id ?? response.headers.get('x-request-id') ?? undefined },
  )
}

/** The user's connection, as `GET /api/tiktok/connection` answers it; `{ verify: true }` asks TikTok too. */
export const getConnection = (token, options) => call(token, 'GET', `/connection${options?.verify ? '?verify=true' : ''}`)

/** Makes `advertiserId` (one of the connection's `advertisers`) the account the product uses. */
export const chooseAdvertiser = (token, advertiserId) => call(token, 'POST', '/advertiser', { advertiser_id: advertiserId })

/** Revokes the access at TikTok and forgets the connection; answers `{ success, revoked, message }`. */
export const disconnect = (token) => call(token, 'DELETE', '/connection')

/**
 * Connects TikTok: a popup (`auto` falls back to a full-page redirect when it is blocked) that
 * resolves with `{ business_id, account_id, advertisers, connected_at }`. Call it in the click
 * handler before any `await`: Safari allows a popup only there.
 */
export function connectTikTok(options) {
  if (active) return active.focus(), active.promise
  const { accessToken, getAccessToken, mode = 'auto', returnTo = location.pathname, onEvent } = options
  const emit = (type, detail) => {
    try {
      onEvent?.({ type, ...detail })
    } catch (error) {
      setTimeout(() => {
        throw error
      })
    }
  }
  const token = async () => (getAccessToken ? getAccessToken() : accessToken)
  const fail = (error) => {
    emit('error', { code: error.code, message: error.message })
    throw error
  }
  const start = async () => (await call(await token(), 'POST', '/oauth/start', { return_to: returnTo })).authorize_url
  // The Worker checks it too; this keeps another site's address out of the request altogether.
  if (!/^\/(?![/\\])[^\s\\]*$/.test(returnTo)) return Promise.reject(failure('invalid_return_to', 'returnTo must be a path on this site.')).catch(fail)

  const flow = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')
  const popup = mode != 'redirect' && typeof BroadcastChannel == 'function' ? openPopup(flow) : null
  if (!popup) {
    if (mode == 'popup') return Promise.reject(failure('popup_blocked', 'The browser blocked the TikTok window.')).catch(fail)
    return start()
      .then((url) => {
        emit('opened', { mode: 'redirect' })
        location.assign(url)
        return new Promise(() => {})
      })
      .catch(fail)
  }

  const channel = new BroadcastChannel(`tiktok-connect:${flow}`)
  const post = (type) => channel.postMessage({ v: 1, flow, type })
  let heard = 0
  let pinged = 0
  let authorized
  let ending = false
  let settled = false
  let timer
  const promise = new Promise((resolve, reject) => {
    const finish = (error, connection) => {
      if (settled) return
      settled = ending = true
      clearInterval(timer)
      channel.close()
      active = undefined
      if (error) {
        if (!popup.closed) popup.close()
        emit('error', { code: error.code, message: error.message })
        reject(error)
      } else {
        emit('connected', { connection })
        resolve(connection)
      }
      emit('closed')
    }
    // The popup's word only says when to look: the result is read from the Worker.
    const connected = async () => {
      const now = await getConnection(await token())
      if (!now.connected) throw failure(now.reason ?? 'not_connected', 'TikTok is not connected.')
      const { business_id, account_id, advertisers, connected_at } = now
      finish(null, { business_id, account_id, advertisers, connected_at })
    }
    channel.onmessage = ({ data, origin }) => {
      if (origin != location.origin || data?.v != 1 || data.flow != flow || ending) return
      heard = Date.now()
      if (data.type == 'authorized') {
        authorized = true
        emit('authorized')
      } else if (data.type == 'advertiser_chosen') emit('advertiser_chosen', { business_id: String(data.business_id) })
      else if (data.type == 'done') {
        ending = true
        post('ack')
        if (data.ok) connected().catch(finish)
        else finish(failure(String(data.code).slice(0, 64), String(data.error).slice(0, 500)))
      }
    }
    timer = setInterval(() => {
      if (ending || !popup.closed) return
      if (heard >= pinged) {
        pinged = Date.now()
        post('ping')
      } else if (Date.now() - pinged > (heard ? GRACE_MS : FIRST_GRACE_MS)) {
        ending = true
        const closed = () => finish(failure('popup_closed', 'The TikTok window was closed before TikTok was connected.'))
        // Closed after TikTok said yes: the exchange may have stored the connection all the same.
        authorized ? connected().catch(closed) : closed()
      }
    }, POLL_MS)
    start()
      .then((url) => popup.closed || popup.location.replace(url))
      .catch(finish)
  })
  active = {
    promise,
    focus() {
      popup.focus()
      post('focus')
    },
  }
  emit('opened', { mode: 'popup' })
  return promise
}

function openPopup(flow) {
  const [width, height] = [500, 720]
  const popup = open(
    '/oauth/popup',
    '_blank',
    `popup,width=${width},height=${height},left=${screenX + (outerWidth - width) / 2},top=${screenY + (outerHeight - height) / 3}`,
  )
  try {
    // TikTok's pages, loaded in it next, must not be able to navigate this page.
    popup.opener = null
    // A popup starts with a copy of this tab's sessionStorage: nothing of it (an earlier outcome,
    // a token) belongs in the flow.
    popup.sessionStorage.clear()
    popup.sessionStorage.setItem(FLOW_KEY, JSON.stringify({ flow, expires: Date.now() + FLOW_TTL_MS }))
    return popup
  } catch {
    popup?.close()
    return null
  }
}
