// The demo product page. Everything TikTok goes through /oauth/tiktok-connect.js, as it would on a
// product's own page: connect (popup, or this tab), status, switching the advertiser, disconnect.
import { chooseAdvertiser, connectTikTok, disconnect, getConnection } from '/oauth/tiktok-connect.js'

const SESSION_KEY = 'demo_supabase_session'
const $ = (id) => document.getElementById(id)

// `npm run dev` serves /__dev/sandbox.js: where this run's sandbox signs users in, whatever its ports.
const sandbox = import('/__dev/sandbox.js').catch(() => undefined)

/** A sentence under the control that caused it (`sign-in-feedback`, `advertiser-feedback`, `feedback`). */
const say = (where, message = '', kind = 'error') => {
  $(where).textContent = message
  $(where).className = `feedback ${kind}`
  // On a phone the sentence may fall below the fold: bring it just into view.
  if (message) $(where).scrollIntoView({ block: 'nearest' })
}
const quiet = () => {
  for (const id of ['sign-in-feedback', 'advertiser-feedback', 'feedback']) say(id)
}

const session = () => {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null')
  } catch {
    return null
  }
}
/** The user's Supabase access token, read when the client needs one; undefined once signed out. */
const accessToken = () => session()?.accessToken

const element = (tag, className, text) => {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

/** One advertiser account: the one in use is marked and tinted; each other one is a button to use it. */
function advertiserRow(advertiser, current) {
  const row = element(current ? 'div' : 'button', current ? 'choice current' : 'choice')
  const label = element('span', 'label')
  label.append(element('span', 'name', advertiser.name || advertiser.id), element('span', 'id', `ID ${advertiser.id}`))
  row.append(label)
  if (current) label.append(element('span', 'badge', 'In use'))
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

/** What the page last showed: the confirmation names the account it disconnects. */
let shown = { connected: false }

/** Paints a `getConnection` answer; `note` replaces the status sentence when not connected. */
function paint(connection, note) {
  shown = connection
  const revoked = !connection.connected && connection.reason === 'revoked'
  const choosing = connection.connected && connection.advertiser_required === true
  const state = connection.connected ? (choosing ? 'choosing' : 'connected') : revoked ? 'revoked' : 'not-connected'
  $('status').textContent = {
    connected: `TikTok is connected. This product uses ${connection.advertiser?.name}.`,
    choosing: 'TikTok is connected, but the advertiser account this product used is no longer shared with it. Choose one below.',
    // The advertiser removed the app at TikTok: the stored token is dead until the user reconnects.
    revoked: `TikTok access${connection.advertiser?.name ? ` to ${connection.advertiser?.name}` : ''} was removed. Reconnect to use it again.`,
    'not-connected': note || 'TikTok is not connected.',
  }[state]
  $('status').classList.toggle('revoked', revoked)
  $('status-icon').className = `icon small ${connection.connected ? 'done' : 'failed'}`
  $('status-icon').hidden = state === 'not-connected'

  const list = $('advertiser-list')
  list.replaceChildren(...(connection.connected ? connection.advertisers || [] : []).map((a) => advertiserRow(a, a.id === connection.advertiser?.id)))
  list.hidden = $('advertisers-heading').hidden = list.childElementCount === 0
  // Connected, TikTok opens in the popup: the choice of window matters only before connecting.
  $('mode').hidden = connection.connected
  $('disconnect').hidden = $('verify').hidden = !connection.connected
  $('connect').textContent = connection.connected ? 'Reconnect TikTok' : revoked ? 'Reconnect' : 'Connect TikTok'
  $('connect').className = connection.connected ? 'button secondary' : 'button'
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
    say('feedback', error.message)
  }
  paint(connection, note)
}

/** A client call from a button: its error goes right under the buttons, the page shows what is true afterwards. */
async function act(button, work) {
  quiet()
  button.disabled = true
  try {
    await work()
  } catch (error) {
    await render()
    say('feedback', error.message)
  } finally {
    button.disabled = false
  }
}

async function switchTo(advertiser) {
  quiet()
  for (const button of document.querySelectorAll('#advertiser-list button')) button.disabled = true
  try {
    await chooseAdvertiser(accessToken(), advertiser.id)
    await render()
    say('advertiser-feedback', `This product now uses ${advertiser.name || advertiser.id}.`, 'ok')
  } catch (error) {
    await render()
    say('advertiser-feedback', error.message)
  }
}

/** Every onEvent from the client, listed on the page so you can see what a product receives. */
function logEvent(event) {
  const detail = event.mode || event.code || event.advertiser_id || event.connection?.advertiser?.id
  $('event-log').append(element('li', '', detail ? `${event.type} (${detail})` : event.type))
}

// `?mode=redirect` starts with "in this tab" selected.
if (new URLSearchParams(location.search).get('mode') === 'redirect') document.querySelector('input[name="mode"][value="redirect"]').checked = true

$('sign-in').addEventListener('submit', async (event) => {
  event.preventDefault()
  quiet()
  try {
    const helper = await sandbox
    if (!helper) throw new Error('This demo signs in to the offline sandbox: start it with npm run dev, then reload this page.')
    const signedIn = await helper.signIn($('email').value, $('password').value)
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(signedIn))
    await render()
    $('tiktok-heading').focus()
  } catch (error) {
    say('sign-in-feedback', error.message)
  }
})

$('connect').addEventListener('click', () => {
  quiet()
  // Called in the click itself, before any await: Safari opens a popup only there. A second click
  // while the popup is open brings it to the front; once it is closed, it starts again.
  connectTikTok({
    getAccessToken: accessToken,
    returnTo: location.pathname,
    mode: document.querySelector('input[name="mode"]:checked').value,
    onEvent: logEvent,
  }).then(
    () => render(),
    async (error) => {
      await render()
      // Signed out meanwhile: the sentence belongs beside the sign-in form, now the one shown.
      if (error.code !== 'popup_closed') say(session() ? 'feedback' : 'sign-in-feedback', error.message)
    },
  )
})

$('verify').addEventListener('click', () =>
  act($('verify'), async () => {
    const connection = await getConnection(accessToken(), { verify: true })
    paint(connection)
    if (connection.connected && !connection.advertiser_required) {
      const count = connection.advertisers.length
      say('feedback', `TikTok confirms the access works: ${count} advertiser account${count === 1 ? '' : 's'} shared.`, 'ok')
    }
  }),
)

// Disconnecting revokes the access at TikTok: it asks first.
$('disconnect').addEventListener('click', () => {
  quiet()
  const which = shown.advertiser?.name ? `“${shown.advertiser?.name}”` : 'your TikTok advertiser accounts'
  $('confirm-text').textContent = `This product stops using ${which}, and TikTok revokes its access. You can connect again at any time.`
  $('confirm-disconnect').showModal()
})
$('confirm-no').addEventListener('click', () => $('confirm-disconnect').close())
$('confirm-yes').addEventListener('click', () => {
  $('confirm-disconnect').close()
  act($('disconnect'), async () => {
    const { message } = await disconnect(accessToken())
    await render(message)
    $('connect').focus()
  })
})

$('sign-out').addEventListener('click', async () => {
  sessionStorage.removeItem(SESSION_KEY)
  quiet()
  await render()
  $('sign-in-heading').focus()
})

render()
