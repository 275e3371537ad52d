// The OAuth callback: TikTok sends the browser here with ?auth_code=…&state=…. Query values are only
// ever sent to our own API or written with textContent, never parsed as HTML.
//
// In a popup opened by tiktok-connect.js, which left a flow id in this window's sessionStorage, the
// page reports to the product page over BroadcastChannel `tiktok-connect:<flow>` (why not
// window.opener: see the top of tiktok-connect.js), answers its pings, and closes once the product
// page has acknowledged the outcome. Without an acknowledgement it carries on as a full-page flow.
;(() => {
  'use strict'

  const EXCHANGE_URL = '/api/tiktok/oauth/exchange'
  const CHOOSE_URL = '/api/tiktok/oauth/advertiser'
  const DEFAULT_RETURN = '/profile'
  const RESULT_KEY = 'tiktok_callback_result'
  const FLOW_KEY = 'tiktok_connect_flow'
  const REDIRECT_DELAY_MS = 1500
  const TIMEOUT_MS = 30000
  // The product page answers at once when it is there; past this, it was closed or reloaded.
  const ACK_WAIT_MS = 2000

  const $ = (id) => document.getElementById(id)

  // Titles per error code; the sentence under it comes from the API, written for a person.
  const TITLES = {
    denied: 'TikTok was not connected',
    no_authorization: 'No TikTok connection in progress',
    code_invalid_or_used: 'This authorization expired',
    state_expired: 'This authorization expired',
    invalid_state: 'This link is not valid',
    state_not_bound: 'Please start again in this browser',
    origin_not_allowed: 'This site may not connect TikTok',
    tiktok_rate_limited: 'TikTok is busy',
    tiktok_unavailable: 'TikTok is unavailable',
    tiktok_permission_denied: 'A permission is missing',
    storage_unavailable: 'Could not save the connection',
    network: 'Could not reach the server',
    state_used: 'This authorization was already used',
    state_locked: 'This authorization failed too many times',
    rate_limited: 'Too many attempts',
    ticket_expired: 'The time to choose ran out',
  }

  /** A same-origin path only: anything else falls back to the default. */
  const safePath = (value) =>
    typeof value === 'string' && /^\/(?![/\\])[^\s\\]*$/.test(value) ? value : DEFAULT_RETURN

  /** The product page that opened this window as a popup, or null (a full-page flow). */
  const opener = (() => {
    let flow
    try {
      const entry = JSON.parse(sessionStorage.getItem(FLOW_KEY) || 'null')
      if (entry && /^[0-9a-f]{32}$/.test(entry.flow) && entry.expires > Date.now()) flow = entry.flow
    } catch {
      // Storage disabled: no popup flow can have started here.
    }
    if (!flow || typeof BroadcastChannel !== 'function') return null
    const channel = new BroadcastChannel(`tiktok-connect:${flow}`)
    const post = (type, detail) => channel.postMessage({ v: 1, flow, type, ...detail })
    let acknowledged
    const ack = new Promise((resolve) => (acknowledged = resolve))
    channel.onmessage = ({ data, origin }) => {
      if (origin !== location.origin || !data || data.v !== 1 || data.flow !== flow) return
      if (data.type === 'ping') post('alive')
      else if (data.type === 'focus') window.focus()
      else if (data.type === 'ack') acknowledged(true)
    }
    // Back from TikTok: the product page stops reading popup.closed as "closed".
    post('alive')
    return {
      post,
      /** Hands the outcome over; true once the product page has it. */
      handOver(outcome) {
        try {
          sessionStorage.removeItem(FLOW_KEY)
        } catch {
          // The entry expires on its own.
        }
        post('done', outcome.ok ? { ok: true } : { ok: false, code: outcome.code, error: outcome.message })
        return Promise.race([ack, new Promise((resolve) => setTimeout(resolve, ACK_WAIT_MS, false))])
      },
    }
  })()
  /** Whether this window will close itself: a popup whose product page is listening. */
  let inPopup = !!opener
  document.body.dataset.popup = inPopup ? 'yes' : 'no'

  const element = (tag, className, text) => {
    const node = document.createElement(tag)
    if (className) node.className = className
    if (text !== undefined) node.textContent = text
    return node
  }

  const renderAdvertisers = (outcome) => {
    const list = $('advertisers')
    list.replaceChildren()
    for (const advertiser of outcome.advertisers || []) {
      // Several advertisers: each is a button that stores that choice.
      const row = element(outcome.choose ? 'button' : 'div', 'choice')
      const label = element('span', 'label')
      label.append(element('span', 'name', advertiser.name || advertiser.id), element('span', 'id', `ID ${advertiser.id}`))
      row.append(label)
      if (advertiser.id === outcome.businessId) row.append(element('span', 'badge', 'Current'))
      if (outcome.choose) {
        row.type = 'button'
        row.dataset.id = advertiser.id
        row.addEventListener('click', () => choose(outcome, advertiser))
      }
      const item = element('li')
      item.append(row)
      list.append(item)
    }
    list.hidden = list.childElementCount === 0
  }

  const renderActions = (outcome) => {
    const actions = $('actions')
    actions.replaceChildren()
    if (outcome.choose) {
      // The advertiser buttons are the primary actions; keeping the stored one is the way out.
      const label = outcome.businessId ? 'Keep the current one' : 'Not now'
      if (inPopup) {
        const keep = element('button', 'button secondary', label)
        keep.type = 'button'
        keep.addEventListener('click', () => finish(kept(outcome)))
        actions.append(keep)
      } else {
        const link = element('a', 'button secondary', label)
        link.href = safePath(outcome.returnTo)
        actions.append(link)
      }
    } else if (!inPopup) {
      const link = element('a', 'button', outcome.ok ? 'Continue' : outcome.code === 'no_authorization' ? 'Go to your profile' : 'Back to your profile')
      link.href = safePath(outcome.returnTo)
      actions.append(link)
    }
    actions.hidden = actions.childElementCount === 0
  }

  const show = (outcome) => {
    const changed = $('title').textContent !== outcome.title || $('message').textContent !== outcome.message
    document.title = outcome.title
    $('title').textContent = outcome.title
    $('message').textContent = outcome.message
    $('icon').className = `icon ${outcome.ok ? 'done' : 'failed'}`
    document.querySelector('main').removeAttribute('aria-busy')
    renderAdvertisers(outcome)
    renderActions(outcome)
    document.body.dataset.outcome = outcome.choose ? 'choose' : outcome.ok ? 'success' : outcome.code || 'error'
    if (changed) {
      // Only the outcome is announced; focus goes to its heading, not back to <body>.
      $('announce').textContent = `${outcome.title}. ${outcome.message}`
      $('title').focus()
    }
  }

  const remember = (outcome) => {
    try {
      sessionStorage.setItem(RESULT_KEY, JSON.stringify(outcome))
    } catch {
      // Storage can be disabled; the page still shows the outcome.
    }
  }


  const connected = (name, returnTo) => ({
    ok: true,
    title: 'TikTok connected',
    message: `This product now uses the advertiser account “${name}”.`,
    returnTo,
  })

  /** The choice step left without choosing: the stored advertiser stays (or none, to choose later). */
  const kept = (outcome) => {
    const current = (outcome.advertisers || []).find((a) => a.id === outcome.businessId)
    return current
      ? connected(current.name || current.id, outcome.returnTo)
      : { ok: true, title: 'TikTok connected', message: 'Choose an advertiser account from your profile when you are ready.', returnTo: outcome.returnTo }
  }

  const failure = (code, message, returnTo) => ({
    ok: false,
    code,
    title: TITLES[code] || 'TikTok was not connected',
    message,
    returnTo,
  })

  /** An outcome with nothing left to do here: hand it to the popup's opener, or go back to the product. */
  async function finish(outcome) {
    remember(outcome)
    show(outcome)
    if (inPopup) {
      if (await opener.handOver(outcome)) {
        window.close()
        // Still here (the browser refused to close it): offer the way back like a full page does.
        setTimeout(() => {
          inPopup = false
          renderActions(outcome)
        }, 500)
        return
      }
      inPopup = false
      renderActions(outcome)
    }
    if (outcome.ok) setTimeout(() => location.assign(safePath(outcome.returnTo)), REDIRECT_DELAY_MS)
  }

  /** Stores the advertiser the user picked, with the exchange's selection ticket. */
  async function choose(outcome, advertiser) {
    for (const button of document.querySelectorAll('button.choice')) button.disabled = true
    let next
    try {
      const response = await fetch(CHOOSE_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ticket: outcome.ticket, advertiser_id: advertiser.id }),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
      const body = await response.json().catch(() => ({}))
      if (response.ok && body.success === true) {
        opener?.post('advertiser_chosen', { business_id: body.business_id })
        next = connected(body.account_id || body.business_id, outcome.returnTo)
      } else {
        next = failure(typeof body.code === 'string' ? body.code : 'error', body.error || 'Could not save your choice. Please try again.', outcome.returnTo)
      }
    } catch {
      next = failure('network', 'We could not reach the server to save your choice. Check your connection and try again.', outcome.returnTo)
    }
    await finish(next)
  }

  async function run() {
    const params = new URLSearchParams(location.search)
    const authCode = params.get('auth_code') || params.get('code')
    const state = params.get('state')
    // The code is single-use and the state is a credential: neither stays in the address bar, history
    // or a bookmark.
    if (location.search) history.replaceState(null, '', location.pathname)

    if (!authCode && !state) {
      // A reload or a revisit after the exchange ran: show what happened, never exchange again.
      let previous = null
      try {
        previous = JSON.parse(sessionStorage.getItem(RESULT_KEY) || 'null')
      } catch {
        previous = null
      }
      const outcome =
        previous || failure('no_authorization', 'There is no TikTok authorization in progress. Start from your profile to connect TikTok.')
      if (outcome.choose || !inPopup) show(outcome)
      else await finish(outcome)
      return
    }
    if (!authCode) {
      await finish(failure('denied', 'The TikTok authorization was cancelled or denied. You can connect again whenever you like.'))
      return
    }

    let outcome
    try {
      const response = await fetch(EXCHANGE_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth_code: authCode, state: state || '' }),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      })
      const body = await response.json().catch(() => ({}))
      if (response.ok && body.success === true) {
        // A selection ticket means a choice to offer: several advertisers, or (after the revocation
        // sweep cleared the stored choice) even a single one.
        const choose = !!(body.selection && typeof body.selection.ticket === 'string' && Array.isArray(body.advertisers) && body.advertisers.length > 0)
        const again = choose && !body.business_id
        outcome = {
          ok: true,
          choose,
          ticket: choose ? body.selection.ticket : undefined,
          businessId: body.business_id,
          title: choose ? 'Choose an advertiser account' : 'TikTok connected',
          message: again
            ? 'The advertiser account this product used is no longer shared with it. Choose the one it should use now.'
            : choose
              ? 'TikTok shared several advertiser accounts. Choose the one this product should use; you can change it later.'
              : `Your TikTok advertiser account “${body.account_id || body.business_id}” is connected.`,
          advertisers: body.advertisers,
          returnTo: body.return_to,
        }
        opener?.post('authorized')
      } else {
        outcome = failure(
          typeof body.code === 'string' ? body.code : 'error',
          typeof body.error === 'string' ? body.error : 'Something went wrong while connecting TikTok. Please try again.',
          body.return_to,
        )
      }
    } catch {
      outcome = failure('network', 'We could not reach the server to finish connecting TikTok. Check your connection, then connect again.')
    }
    if (outcome.choose) {
      remember(outcome)
      show(outcome)
    } else await finish(outcome)
  }

  // Runs once per page load, and strips the code from the URL before its first await: a reload, a
  // restored tab or a second event finds nothing to exchange.
  run()
})()
