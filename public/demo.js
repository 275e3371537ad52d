// The demo product page. Everything TikTok goes through /oauth/tiktok-connect.js, as it would on a
// product's own page: connect (popup, or this tab), status, switching the advertiser, disconnect.
import { chooseAdvertiser, connectTikTok, disconnect, getConnection } from '/oauth/tiktok-connect.js'

const SESSION_KEY = 'demo_supabase_session'
const $ = (id) => document.getElementById(id)

const showError = (message) => {
  $('error').textContent = message || ''
  $('error').hidden = !message
}

const session = () => {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null')
  } catch {
    return null
  }
}
/** The user's Supabase access token, read when the client needs one. */
const accessToken = () => session()?.accessToken

const element = (tag, className, text) => {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

/** One advertiser account: name, then its id; a badge on the one in use, a button on the others. */
function advertiserRow(advertiser, current) {
  const row = element(current ? 'div' : 'button', 'choice')
  const label = element('span', 'label')
  label.append(element('span', 'name', advertiser.name || advertiser.id), element('span', 'id', `ID ${advertiser.id}`))
  row.append(label)
  if (current) row.append(element('span', 'badge', 'Current'))
  else {
    row.type = 'button'
    row.dataset.id = advertiser.id
    row.append(element('span', 'go', 'Use this one'))
    row.addEventListener('click', () => switchTo(advertiser))
  }
  const item = element('li')
  item.append(row)
  return item
}

/** Paints a `getConnection` answer; `note` replaces the status sentence when not connected. */
function paint(connection, note) {
  const revoked = !connection.connected && connection.reason === 'revoked'
  const choosing = connection.connected && connection.advertiser_required === true
  const state = connection.connected ? (choosing ? 'choosing' : 'connected') : revoked ? 'revoked' : 'not-connected'
  const which = connection.account_id ? ` (${connection.account_id}, ${connection.business_id})` : ''
  $('status').textContent = {
    connected: `Connected: ${connection.account_id} (${connection.business_id})`,
    choosing: 'Connected, but the advertiser account this product used is no longer shared with it. Choose one below.',
    // The advertiser removed the app at TikTok: the stored token is dead until the user reconnects.
    revoked: `TikTok access was removed${which}. Reconnect to use it again.`,
    'not-connected': note || 'Not connected.',
  }[state]
  $('status').classList.toggle('revoked', revoked)
  $('status-icon').className = `icon small ${connection.connected ? 'done' : 'failed'}`
  $('status-icon').hidden = state === 'not-connected'

  const list = $('advertiser-list')
  list.replaceChildren(
    ...(connection.connected ? connection.advertisers || [] : []).map((a) => advertiserRow(a, a.id === connection.business_id)),
  )
  list.hidden = $('advertisers-heading').hidden = list.childElementCount === 0
  $('disconnect').hidden = $('verify').hidden = !connection.connected
  $('connect').textContent = connection.connected ? 'Reconnect TikTok' : revoked ? 'Reconnect' : 'Connect TikTok'
  Object.assign(document.body.dataset, { state, connected: connection.connected ? 'yes' : 'no', reason: connection.reason || '' })
}

async function render(note) {
  const current = session()
  $('signed-out').hidden = !!current
  $('signed-in').hidden = !current
  if (!current) {
    Object.assign(document.body.dataset, { state: 'signed-out', connected: 'no', reason: '' })
    return
  }
  $('who').textContent = current.email
  let connection = { connected: false }
  try {
    connection = await getConnection(current.accessToken)
  } catch (error) {
    showError(error.message)
  }
  paint(connection, note)
}

/** A client call from a button: errors go to the alert line, the page shows what is true afterwards. */
async function act(button, work) {
  showError('')
  button.disabled = true
  try {
    await work()
  } catch (error) {
    showError(error.message)
    await render()
  } finally {
    button.disabled = false
  }
}

async function switchTo(advertiser) {
  showError('')
  for (const button of document.querySelectorAll('#advertiser-list button')) button.disabled = true
  try {
    await chooseAdvertiser(accessToken(), advertiser.id)
  } catch (error) {
    showError(error.message)
  }
  await render()
}

/** Every onEvent from the client, listed on the page so you can see what a product receives. */
function logEvent(event) {
  const detail = event.mode || event.code || event.business_id || event.connection?.business_id
  $('event-log').append(element('li', '', detail ? `${event.type} (${detail})` : event.type))
}

// `npm run dev` serves /__dev/sandbox.js: where this run's sandbox signs users in, whatever its ports.
const sandbox = import('/__dev/sandbox.js').catch(() => undefined)
const query = new URLSearchParams(location.search)
// `?mode=redirect` starts with "in this tab" selected.
if (query.get('mode') === 'redirect') document.querySelector('input[name="mode"][value="redirect"]').checked = true

$('sign-in').addEventListener('submit', async (event) => {
  event.preventDefault()
  showError('')
  try {
    const helper = await sandbox
    if (!helper) throw new Error('This demo signs in to the offline sandbox: start it with npm run dev, then reload this page.')
    const signedIn = await helper.signIn($('email').value, $('password').value)
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(signedIn))
    await render()
    $('tiktok-heading').focus()
  } catch (error) {
    showError(error.message)
  }
})

$('connect').addEventListener('click', () => {
  showError('')
  // Called in the click itself, before any await: Safari opens a popup only there. A second click
  // while the popup is open brings it to the front.
  connectTikTok({
    getAccessToken: accessToken,
    returnTo: location.pathname,
    mode: document.querySelector('input[name="mode"]:checked').value,
    onEvent: logEvent,
  }).then(
    () => render(),
    (error) => {
      showError(error.message)
      return render()
    },
  )
})

$('verify').addEventListener('click', () =>
  act($('verify'), async () => paint(await getConnection(accessToken(), { verify: true }))),
)

$('disconnect').addEventListener('click', () =>
  act($('disconnect'), async () => {
    const { message } = await disconnect(accessToken())
    await render(message)
  }),
)

$('sign-out').addEventListener('click', async () => {
  sessionStorage.removeItem(SESSION_KEY)
  showError('')
  await render()
  $('sign-in-heading').focus()
})

render()
