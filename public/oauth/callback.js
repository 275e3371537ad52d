// The OAuth callback: TikTok sends the browser here with ?auth_code=…&state=…. Query values are only
// ever sent to our own API or written with textContent, never parsed as HTML.
;(() => {
  'use strict'

  const EXCHANGE_URL = '/api/tiktok/oauth/exchange'
  const CHOOSE_URL = '/api/tiktok/advertiser'
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
    state_used: 'This authorization was already used',
    state_locked: 'This authorization failed too many times',
    rate_limited: 'Too many attempts',
    ticket_expired: 'The time to choose ran out',
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
      const label = advertiser.name ? `${advertiser.name} (${advertiser.id})` : advertiser.id
      if (outcome.choose) {
        // Several advertisers: each is a button that stores that choice.
        const button = document.createElement('button')
        button.type = 'button'
        button.className = 'choice'
        button.dataset.id = advertiser.id
        button.textContent = advertiser.id === outcome.businessId ? `${label} (current)` : label
        button.addEventListener('click', () => choose(outcome, advertiser))
        item.append(button)
      } else {
        item.textContent = label
      }
      list.append(item)
    }
    list.hidden = list.childElementCount === 0
    const link = $('continue')
    link.href = safePath(outcome.returnTo)
    link.textContent = outcome.choose ? 'Keep the current one and continue' : outcome.ok ? 'Continue' : 'Back and try again'
    $('actions').hidden = false
    document.body.dataset.outcome = outcome.choose ? 'choose' : outcome.ok ? 'success' : outcome.code || 'error'
  }

  const remember = (outcome) => {
    try {
      sessionStorage.setItem(RESULT_KEY, JSON.stringify(outcome))
    } catch {
      // Storage can be disabled; the page still shows the outcome.
    }
  }

  const saveSummary = (summary) => {
    try {
      localStorage.setItem('tiktok_connection', JSON.stringify({ ...summary, connected_at: new Date().toISOString() }))
    } catch {
      // Not fatal: the connection is stored server-side.
    }
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
        saveSummary({ business_id: body.business_id, account_id: body.account_id, advertisers: body.advertisers })
        next = {
          ok: true,
          title: 'TikTok connected',
          message: `This product now uses the advertiser account “${body.account_id || body.business_id}”.`,
          returnTo: outcome.returnTo,
        }
      } else {
        next = failure(typeof body.code === 'string' ? body.code : 'error', body.error || 'Could not save your choice. Please try again.', outcome.returnTo)
      }
    } catch {
      next = failure('network', 'We could not reach the server to save your choice. Check your connection and try again.', outcome.returnTo)
    }
    remember(next)
    show(next)
    if (next.ok) setTimeout(() => location.assign(safePath(next.returnTo)), REDIRECT_DELAY_MS)
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
        const several = body.selection && Array.isArray(body.advertisers) && body.advertisers.length > 1
        outcome = {
          ok: true,
          choose: !!several,
          ticket: several ? body.selection.ticket : undefined,
          businessId: body.business_id,
          title: several ? 'Choose an advertiser account' : 'TikTok connected',
          message: several
            ? 'TikTok shared several advertiser accounts. Choose the one this product should use; you can change it later.'
            : `Your TikTok advertiser account “${body.account_id || body.business_id}” is connected.`,
          advertisers: body.advertisers,
          returnTo: body.return_to,
        }
        saveSummary({ business_id: body.business_id, account_id: body.account_id, advertisers: body.advertisers })
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
    if (outcome.ok && !outcome.choose) setTimeout(() => location.assign(safePath(outcome.returnTo)), REDIRECT_DELAY_MS)
  }

  // Runs once per page load, and strips the code from the URL before its first await: a reload, a
  // restored tab or a second event finds nothing to exchange.
  run()
})()
