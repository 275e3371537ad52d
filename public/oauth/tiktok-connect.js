// Connect TikTok in one call (tiktok-connect.d.ts). The callback's COOP cuts the popup's handle, so the
// two talk over a BroadcastChannel named by a flow id put in the popup's own sessionStorage.

const API = '/api/tiktok'
const FLOW_KEY = 'tiktok_connect_flow'
// The state's lifetime: after it, the callback cannot complete this flow anyway.
const FLOW_TTL_MS = 600_000
const POLL_MS = 250
// The callback, once it has spoken, answers a ping at once. Before that, popup.closed may read true
// with the window open: a page at TikTok may cut the handle (COOP), or the callback may be loading.
const ANSWER_MS = 500
const TIKTOK_GRACE_MS = 15_000
const SIGNED_OUT = 'You are not signed in. Sign in, then try again.'

let active

const failure = (code, message, more) => Object.assign(new Error(message), { code, status: 0, retryable: false, requestId: undefined }, more)

async function call(token, method, path, body) {
  if (!token) throw failure('signed_out', SIGNED_OUT)
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

export const getConnection = (token, options) => call(token, 'GET', `/connection${options?.verify ? '?verify=true' : ''}`)

export const chooseAdvertiser = (token, advertiserId) => call(token, 'POST', '/advertiser', { advertiser_id: advertiserId })

export const disconnect = (token) => call(token, 'DELETE', '/connection')

export function connectTikTok(options) {
  if (active?.live()) return (active.focus(), active.promise)
  // The earlier popup is closed, or cut off at TikTok and out of reach: a new flow.
  active?.end()
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
  const token = async () => {
    try {
      return await (getAccessToken ? getAccessToken() : accessToken)
    } catch (cause) {
      throw failure('signed_out', SIGNED_OUT, { cause })
    }
  }
  const said = (error) => emit('error', { code: error.code, message: error.message })
  const fail = (error) => {
    said(error)
    throw error
  }
  const start = async () => (await call(await token(), 'POST', '/oauth/start', { return_to: returnTo })).authorize_url
  // The Worker checks it too; this keeps another site's address out of the request.
  if (!/^\/(?![/\\])[^\s\\]*$/.test(returnTo)) return Promise.reject(failure('invalid_return_to', 'returnTo must be a path on this site.')).catch(fail)

  const flow = crypto.randomUUID().replaceAll('-', '')
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
  const closedEarly = () => failure('popup_closed', 'The TikTok window was closed before TikTok was connected.')
  let heard = 0
  let pinged = 0
  let atTikTok, authorized, ending, settled, resolve, reject, timer
  const me = {
    promise: new Promise((...settle) => ([resolve, reject] = settle)),
    // Open, or cut off by the callback's COOP but answering its pings.
    live: () => !popup.closed || Date.now() - heard < 4 * POLL_MS,
    end: () => ending || finish(closedEarly()),
    focus() {
      popup.focus()
      post('focus')
    },
  }
  const finish = (error, connection) => {
    if (settled) return
    settled = ending = true
    clearInterval(timer)
    channel.close()
    if (active == me) active = undefined
    if (error) {
      popup.close()
      said(error)
      reject(error)
    } else {
      emit('connected', { connection })
      resolve(connection)
    }
    emit('closed')
  }
  // The popup's word only says when to look: the result is read from the Worker.
  const connected = (instead) =>
    token()
      .then(getConnection)
      .then(
        ({ connected, reason, advertiser, advertisers, connected_at }) =>
          finish(
            ...(connected ? [null, { advertiser, advertisers, connected_at }] : [instead ?? failure(reason ?? 'not_connected', 'TikTok is not connected.')]),
          ),
        // The exchange stored it for the user who started the flow: only this page lost the session.
        (error) =>
          finish(
            /^(signed_out|unauthorized)$/.test(error.code)
              ? failure('signed_out', 'TikTok is connected, but you were signed out here. Sign in again to see it.', { cause: error })
              : (instead ?? error),
          ),
      )
  // Closed after TikTok said yes: the exchange may have stored the connection all the same.
  const closed = () => {
    ending = true
    authorized ? connected(closedEarly()) : finish(closedEarly())
  }
  channel.onmessage = ({ data, origin }) => {
    if (origin != location.origin || data?.v != 1 || data.flow != flow || ending) return
    heard = Date.now()
    if (data.type == 'authorized') {
      authorized = true
      emit('authorized')
    } else if (data.type == 'advertiser_chosen') emit('advertiser_chosen', { advertiser_id: String(data.advertiser_id) })
    else if (data.type == 'done') {
      ending = true
      post('ack')
      data.ok ? connected() : finish(failure(String(data.code).slice(0, 64), String(data.error).slice(0, 500)))
    }
  }
  timer = setInterval(() => {
    if (ending || !popup.closed) return
    // Still on /oauth/popup, ours and without COOP: closed means closed.
    if (!atTikTok) closed()
    else if (heard >= pinged) {
      pinged = Date.now()
      post('ping')
    } else if (Date.now() - pinged >= (heard ? ANSWER_MS : TIKTOK_GRACE_MS)) closed()
  }, POLL_MS)
  start()
    .then((url) => popup.closed || ((atTikTok = true), popup.location.replace(url)))
    .catch(finish)
  active = me
  emit('opened', { mode: 'popup' })
  return me.promise
}

function openPopup(flow) {
  const [width, height] = [500, 720]
  const popup = open(
    '/oauth/popup',
    '_blank',
    `popup,width=${width},height=${height},left=${screenX + (outerWidth - width) / 2},top=${screenY + (outerHeight - height) / 3}`,
  )
  try {
    // TikTok's pages, loaded in it next, must not navigate this page.
    popup.opener = null
    // A popup starts with a copy of this tab's sessionStorage, which does not belong in the flow.
    popup.sessionStorage.clear()
    popup.sessionStorage.setItem(FLOW_KEY, JSON.stringify({ flow, expires: Date.now() + FLOW_TTL_MS }))
    return popup
  } catch {
    popup?.close()
    return null
  }
}
