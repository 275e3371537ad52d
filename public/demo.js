// The demo product page. The part a product copies is connectTikTok(): POST /api/tiktok/oauth/start
// with the user's Supabase access token, then send the browser to the authorize_url it answers.
;(() => {
  'use strict'

  const SESSION_KEY = 'demo_supabase_session'
  const $ = (id) => document.getElementById(id)

  const showError = (message) => {
    $('error').textContent = message || ''
    $('error').hidden = !message
  }

  /** Sign in with Supabase Auth's password grant (the sandbox implements the same endpoint). */
  async function signIn(supabaseUrl, email, password) {
    const response = await fetch(`${supabaseUrl.replace(/\/+$/, '')}/auth/v1/token?grant_type=password`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', apikey: 'sb_publishable_demo' },
      body: JSON.stringify({ email, password }),
    })
    const body = await response.json().catch(() => ({}))
    if (!response.ok) throw new Error(body.msg || 'Sign-in failed.')
    return { accessToken: body.access_token, email: body.user && body.user.email }
  }

  /** What a product's "Connect TikTok" button does. */
  async function connectTikTok(accessToken, returnTo) {
    const response = await fetch('/api/tiktok/oauth/start', {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ return_to: returnTo }),
    })
    const body = await response.json()
    if (!response.ok) throw new Error(body.error)
    location.assign(body.authorize_url)
  }

  const session = () => {
    try {
      return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null')
    } catch {
      return null
    }
  }

  /** The connection as the Worker reports it: GET /api/tiktok/connection with the user's token. */
  async function connectionStatus(accessToken) {
    const response = await fetch('/api/tiktok/connection', { headers: { authorization: `Bearer ${accessToken}` } })
    const body = await response.json()
    if (!response.ok) throw new Error(body.error)
    return body
  }

  async function render() {
    const current = session()
    $('signed-out').hidden = !!current
    $('signed-in').hidden = !current
    if (!current) return
    $('who').textContent = current.email
    const list = $('advertiser-list')
    list.replaceChildren()
    let connection = { connected: false }
    try {
      connection = await connectionStatus(current.accessToken)
    } catch (error) {
      showError(error.message)
    }
    const revoked = !connection.connected && connection.reason === 'revoked'
    if (connection.connected) {
      $('status').textContent = `Connected: ${connection.account_id} (${connection.business_id})`
      for (const advertiser of connection.advertisers || []) {
        const item = document.createElement('li')
        item.textContent = `${advertiser.name} (${advertiser.id})`
        list.append(item)
      }
    } else if (revoked) {
      // The advertiser removed the app at TikTok: the stored token is dead until the user reconnects.
      const which = connection.account_id ? ` (${connection.account_id}, ${connection.business_id})` : ''
      $('status').textContent = `TikTok access was removed${which} — Reconnect to use it again.`
    } else {
      $('status').textContent = 'Not connected.'
    }
    $('status').classList.toggle('revoked', revoked)
    list.hidden = list.childElementCount === 0
    $('disconnect').hidden = !connection.connected
    $('connect').textContent = connection.connected ? 'Reconnect TikTok' : revoked ? 'Reconnect' : 'Connect TikTok'
    document.body.dataset.connected = connection.connected ? 'yes' : 'no'
    document.body.dataset.reason = connection.reason || ''
  }

  // The sign-in form sends the password to this URL. `?supabase=` points it at a local sandbox on
  // other ports, so it is honoured only on a loopback page and for an http(s) loopback URL: a link
  // cannot make a deployed demo send the password elsewhere.
  const DEFAULT_SUPABASE_URL = 'http://127.0.0.1:8790/supabase'
  const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])
  const isLoopbackUrl = (value) => {
    try {
      const url = new URL(value)
      return (url.protocol === 'http:' || url.protocol === 'https:') && LOOPBACK_HOSTS.has(url.hostname)
    } catch {
      return false
    }
  }
  const requested = new URLSearchParams(location.search).get('supabase')
  $('supabase-url').value =
    requested && LOOPBACK_HOSTS.has(location.hostname) && isLoopbackUrl(requested) ? requested : DEFAULT_SUPABASE_URL

  $('sign-in').addEventListener('submit', async (event) => {
    event.preventDefault()
    showError('')
    try {
      const signedIn = await signIn($('supabase-url').value, $('email').value, $('password').value)
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(signedIn))
      await render()
    } catch (error) {
      showError(error.message)
    }
  })

  $('connect').addEventListener('click', async () => {
    showError('')
    $('connect').disabled = true
    try {
      await connectTikTok(session().accessToken, location.pathname)
    } catch (error) {
      showError(error.message)
      $('connect').disabled = false
    }
  })

  $('disconnect').addEventListener('click', async () => {
    showError('')
    const response = await fetch('/api/tiktok/connection', {
      method: 'DELETE',
      headers: { authorization: `Bearer ${session().accessToken}` },
    })
    const body = await response.json()
    if (!response.ok) showError(body.error)
    else localStorage.removeItem('tiktok_connection')
    await render()
    $('status').textContent += ` ${body.message || ''}`
  })

  $('sign-out').addEventListener('click', () => {
    sessionStorage.removeItem(SESSION_KEY)
    render()
  })

  render()
})()
