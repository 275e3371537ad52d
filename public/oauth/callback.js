// The OAuth callback: TikTok sends the browser here with ?auth_code=…&state=…. Query values are only
// ever sent to our own API or written with textContent, never parsed as HTML. The words come from
// words.js in the browser's language, the product's name from product.json (page.js).
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
  /** The page's words (page.js): set before anything is shown. */
  let page

  /** A same-origin path only: anything else falls back to the default. */
  const safePath = (value) => (typeof value === 'string' && /^\/(?![/\\])[^\s\\]*$/.test(value) ? value : DEFAULT_RETURN)

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

  /**
   * While a choice is open, one card per advertiser, each a button that stores it. The one the
   * exchange stored meanwhile is marked as the default: nobody chose it yet.
   */
  const renderAdvertisers = (outcome) => {
    const list = $('advertisers')
    list.replaceChildren()
    for (const advertiser of outcome.choose ? outcome.advertisers : []) {
      const row = element('button', 'choice')
      row.type = 'button'
      row.dataset.id = advertiser.id
      const label = element('span', 'label')
      label.append(element('span', 'name', advertiser.name || advertiser.id), element('span', 'id', page.t('id', { id: advertiser.id })))
      if (advertiser.id === outcome.advertiserId) label.append(element('span', 'badge neutral', page.t('selected_by_default')))
      row.append(label, element('span', 'go', page.t('use_this_account')))
      row.addEventListener('click', () => choose(outcome, advertiser))
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
      // Leaving keeps what the exchange stored (the default), or nothing to choose later.
      const label = page.t('decide_later')
      if (inPopup) {
        const later = element('button', 'button secondary', label)
        later.type = 'button'
        later.addEventListener('click', () => finish(decidedLater(outcome)))
        actions.append(later)
      } else {
        const link = element('a', 'button secondary', label)
        link.href = safePath(outcome.returnTo)
        actions.append(link)
      }
    } else if (!inPopup) {
      const link = element('a', 'button', page.t(outcome.ok ? 'continue' : outcome.code === 'no_authorization' ? 'go_to_profile' : 'back_to_profile'))
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
    // A choice still open is neither a success nor a failure.
    $('icon').className = `icon ${outcome.choose ? 'choose' : outcome.ok ? 'done' : 'failed'}`
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

  const connected = (messageKey, account, returnTo) => ({
    ok: true,
    title: page.t('connected_title'),
    message: page.t(messageKey, { account }),
    returnTo,
  })

  /** The choice left open: the default the exchange stored stays (or none, to choose later). */
  const decidedLater = (outcome) => {
    const kept = outcome.advertisers.find((a) => a.id === outcome.advertiserId)
    return kept
      ? connected('later_message', kept.name || kept.id, outcome.returnTo)
      : { ok: true, title: page.t('connected_title'), message: page.t('later_none_message'), returnTo: outcome.returnTo }
  }

  /**
   * A failure in the page's language. The API's sentence is English: other languages say their own
   * words for the code, or a general sentence.
   */
  const failure = (code, apiMessage, returnTo) => ({
    ok: false,
    code,
    title: page.t(page.has(`error.${code}`) ? `error.${code}` : 'error.other'),
    message: page.has(`message.${code}`)
      ? page.t(`message.${code}`)
      : page.lang.startsWith('en') && typeof apiMessage === 'string'
        ? apiMessage
        : page.t('message.other'),
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
        opener?.post('advertiser_chosen', { advertiser_id: body.advertiser?.id })
        next = connected('chosen_message', body.advertiser?.name || body.advertiser?.id, outcome.returnTo)
      } else {
        next = failure(typeof body.code === 'string' ? body.code : 'error', body.error, outcome.returnTo)
      }
    } catch {
      next = { ...failure('network', undefined, outcome.returnTo), message: page.t('message.network_choice') }
    }
    await finish(next)
  }

  /** What the exchange answered, as this page shows it. */
  const exchanged = (body) => {
    // A selection ticket means a choice to offer: several advertisers, or (after the revocation
    // sweep cleared the stored choice) even a single one.
    const choose = !!(body.selection && typeof body.selection.ticket === 'string' && Array.isArray(body.advertisers) && body.advertisers.length > 0)
    if (!choose) return connected('connected_message', body.advertiser?.name || body.advertiser?.id, body.return_to)
    return {
      ok: true,
      choose,
      ticket: body.selection.ticket,
      advertiserId: body.advertiser?.id ?? null,
      title: page.t('choose_title'),
      message: page.t(body.advertiser ? 'choose_message' : 'choose_again_message'),
      advertisers: body.advertisers,
      returnTo: body.return_to,
    }
  }

  async function run() {
    const params = new URLSearchParams(location.search)
    const authCode = params.get('auth_code') || params.get('code')
    const state = params.get('state')
    // The code is single-use and the state is a credential: neither stays in the address bar, history
    // or a bookmark.
    if (location.search) history.replaceState(null, '', location.pathname)
    // Sent at once: the page's words load meanwhile.
    const exchange =
      authCode &&
      fetch(EXCHANGE_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ auth_code: authCode, state: state || '' }),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      }).then(
        async (response) => ({ response, body: await response.json().catch(() => ({})) }),
        () => undefined,
      )
    page = await self.tiktokConnectPage

    if (!authCode && !state) {
      // A reload or a revisit after the exchange ran: show what happened, never exchange again.
      let previous = null
      try {
        previous = JSON.parse(sessionStorage.getItem(RESULT_KEY) || 'null')
      } catch {
        previous = null
      }
      const outcome = previous || failure('no_authorization')
      if (outcome.choose || !inPopup) show(outcome)
      else await finish(outcome)
      return
    }
    if (!authCode) {
      await finish(failure('denied'))
      return
    }

    let outcome
    const answered = await exchange
    if (!answered) outcome = failure('network')
    else if (answered.response.ok && answered.body.success === true) {
      outcome = exchanged(answered.body)
      opener?.post('authorized')
    } else {
      const { body } = answered
      outcome = failure(typeof body.code === 'string' ? body.code : 'error', body.error, body.return_to)
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
