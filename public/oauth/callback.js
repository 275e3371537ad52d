// The OAuth callback: TikTok sends the browser here with ?auth_code=…&state=…. Query values are only
// ever sent to our own API or written with textContent, never parsed as HTML.
;(() => {
  'use strict'

  const EXCHANGE_URL = '/api/tiktok/oauth/exchange'
  const DEFAULT_RETURN = '/profile'
  const RESULT_KEY = 'tiktok_callback_result'
  const REDIRECT_DELAY_MS = 1500
  const TIMEOUT_MS = 30000

  const $ = (id) => document.getElementById(id)

  // Titles per error code; the sentence under it comes from the API, written for a person.
  const TITLES = {
    denied: 'TikTok was not connected',
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
  }

  /** A same-origin path only: anything else falls back to the default. */
  const safePath = (value) =>
    typeof value === 'string' && /^\/(?![/\\])[^\s\\]*$/.test(value) ? value : DEFAULT_RETURN

  const show = (outcome) => {
    document.title = outcome.title
    $('title').textContent = outcome.title
    $('message').textContent = outcome.message
    $('spinner').className = 'spinner ' + (outcome.ok ? 'done' : 'failed')
    const list = $('advertisers')
    list.replaceChildren()
    for (const advertiser of outcome.advertisers || []) {
      const item = document.createElement('li')
      item.textContent = advertiser.name ? `${advertiser.name} (${advertiser.id})` : advertiser.id
      list.append(item)
    }
    list.hidden = list.childElementCount === 0
    const link = $('continue')
    link.href = safePath(outcome.returnTo)
    link.textContent = outcome.ok ? 'Continue' : 'Back and try again'
    $('actions').hidden = false
    document.body.dataset.outcome = outcome.ok ? 'success' : outcome.code || 'error'
  }

  const remember = (outcome) => {
    try {
      sessionStorage.setItem(RESULT_KEY, JSON.stringify(outcome))
    } catch {
      // Storage can be disabled; the page still shows the outcome.
    }
  }

  const failure = (code, message, returnTo) => ({
    ok: false,
    code,
    title: TITLES[code] || 'TikTok was not connected',
    message,
    returnTo,
  })

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
      show(
        previous ||
          failure('no_authorization', 'There is no TikTok authorization in progress. Start from your profile to connect TikTok.'),
      )
      return
    }
    if (!authCode) {
      const outcome = failure('denied', 'The TikTok authorization was cancelled or denied. You can connect again whenever you like.')
      remember(outcome)
      show(outcome)
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
        outcome = {
          ok: true,
          title: 'TikTok connected',
          message: body.account_id
            ? `Your TikTok advertiser account “${body.account_id}” is connected.`
            : 'Your TikTok advertiser account is connected.',
          advertisers: body.advertisers,
          returnTo: body.return_to,
        }
        try {
          localStorage.setItem(
            'tiktok_connection',
            JSON.stringify({
              business_id: body.business_id,
              account_id: body.account_id,
              advertisers: body.advertisers,
              connected_at: new Date().toISOString(),
            }),
          )
        } catch {
          // Not fatal: the connection is stored server-side.
        }
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
    remember(outcome)
    show(outcome)
    if (outcome.ok) setTimeout(() => location.assign(safePath(outcome.returnTo)), REDIRECT_DELAY_MS)
  }

  // Runs once per page load, and strips the code from the URL before its first await: a reload, a
  // restored tab or a second event finds nothing to exchange.
  run()
})()
