// Issue 11 in a browser: /oauth/tiktok-connect.js (popup, redirect fallback, stray messages), the
// demo profile built on it (advertiser switch, revoked → Reconnect, a choice the sweep cleared), and
// axe-core on every state of the callback page and the profile. A closed popup, signing out
// mid-way and the pages' newer states are issue 16's, in popup.test.ts and pages.test.ts.
import { describe, expect, it } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import {
  callbackUrls,
  channelsOpened,
  type Client,
  connectInPopup,
  clientEvents,
  clientOutcome,
  demoRow,
  DESKTOP,
  exchangeCalls,
  expectAccessible,
  expectTouchFriendly,
  finishInPopup,
  loadClient,
  MOBILE,
  profileShows,
  runSweep,
  sandboxPost,
  shoot,
  signIn,
  startAnswered,
  startClient,
  stillPending,
  tiktokPopup,
  useDemo,
  watchChannels,
} from './harness.ts'

// One stack serves the whole file, and its Worker allows the demo user 10 /start and 10 /exchange a
// minute (wall-clock windows): the file makes 7 of each in all, so no window can run out.
const demo = useDemo('client', { worker: 8879, sandbox: 8892 })
const [US, EU] = DEMO_ADVERTISERS as [(typeof DEMO_ADVERTISERS)[0], (typeof DEMO_ADVERTISERS)[0]]

describe('connectTikTok in a popup', () => {
  it('resolves with the stored connection after the choice; events in order; the popup closes itself; a second call focuses the same popup', async () => {
    const { page, context, primary } = demo
    await signIn(demo)
    const urls: string[] = []
    context.on('request', (request) => urls.push(request.url()))
    const popup = await tiktokPopup(demo, () => startClient(page))
    // A second click while the popup is open: no second window, the same promise.
    const same = await page.evaluate(() => {
      const w = window as unknown as { client: Client; promise: unknown }
      return w.client.connectTikTok({ accessToken: 'unused' }) === w.promise
    })
    expect(same).toBe(true)
    expect(context.pages()).toHaveLength(2)
    // TikTok's page cannot reach (or navigate) the product page.
    expect(await popup.evaluate(() => window.opener)).toBeNull()
    await popup.click('#authorize')
    await popup.waitForSelector('body[data-outcome="choose"]')
    expect(await popup.getAttribute('body', 'data-popup')).toBe('yes')
    await finishInPopup(popup, `button.choice[data-id="${EU.id}"]`)

    const outcome = await clientOutcome(page)
    const row = await demoRow(demo)
    expect(outcome.resolved).toEqual({ advertiser: EU, advertisers: DEMO_ADVERTISERS, connected_at: expect.any(String) })
    expect(Date.parse(outcome.resolved.connected_at)).toBe(Date.parse(row.connected_at as string))
    const events = await clientEvents(page)
    expect(events.map((e) => e.type)).toEqual(['opened', 'authorized', 'advertiser_chosen', 'connected', 'closed'])
    expect(events[0]).toEqual({ type: 'opened', mode: 'popup' })
    expect(events[2]).toEqual({ type: 'advertiser_chosen', advertiser_id: EU.id })
    expect(events[3]).toEqual({ type: 'connected', connection: outcome.resolved })
    expect(row.advertiser_id).toBe(EU.id)
    expect(exchangeCalls(demo)).toBe(1)
    // The access token never reached a URL; the popup's path started at the placeholder.
    const token = (await page.evaluate(() => JSON.parse(sessionStorage.getItem('demo_supabase_session')!).accessToken)) as string
    expect(urls.filter((url) => url.includes(token))).toEqual([])
    expect(urls).toContain(`${primary}/oauth/popup`)
  })

  it('popup blocked: mode "popup" rejects with popup_blocked; "auto" (the profile) goes the full-page way and completes', async () => {
    const { page, context, stack, primary } = demo
    await page.addInitScript(() => {
      window.open = () => null
    })
    await signIn(demo)
    await startClient(page, { mode: 'popup' })
    expect((await clientOutcome(page)).rejected).toMatchObject({ code: 'popup_blocked', isError: true })
    expect((await clientEvents(page)).map((e) => e.type)).toEqual(['error'])

    expect(await page.isChecked('input[name="mode"][value="auto"]')).toBe(true)
    await Promise.all([startAnswered(demo), page.click('#connect')])
    await page.waitForURL(`${stack.sandboxOrigin}/tiktok/portal/auth?**`)
    await page.click('#authorize')
    await page.waitForSelector('body[data-outcome="choose"]')
    expect(await page.getAttribute('body', 'data-popup')).toBe('no')
    await page.click(`button.choice[data-id="${US.id}"]`)
    await page.waitForURL(`${primary}/profile`)
    await page.waitForSelector('body[data-state="connected"]')
    expect(context.pages()).toHaveLength(1)
    expect((await demoRow(demo)).advertiser_id).toBe(US.id)
  })

  it('ignores a BroadcastChannel message of another flow and a postMessage from another origin (or this one)', async () => {
    const { page, context, stack, primary } = demo
    // Records the channel names the client opens, so the test can post on its very channel.
    await watchChannels(page)
    await signIn(demo)
    const popup = await tiktokPopup(demo, () => startClient(page))
    const [name] = (await channelsOpened(page)) as [string]
    const flow = name.replace('tiktok-connect:', '')
    expect(flow).toMatch(/^[0-9a-f]{32}$/)
    const forged = { v: 1, type: 'done', ok: false, code: 'forged', error: 'forged' }
    // The page counts what reached it, beside the client: once all has arrived, the client has seen it too.
    await page.evaluate((name) => {
      const w = window as unknown as { arrived: number }
      w.arrived = 0
      new BroadcastChannel(name).onmessage = () => w.arrived++
      addEventListener('message', () => w.arrived++)
    }, name)

    // Another tab of the product, same origin: other flows, and this flow's channel with another flow id.
    const other = await context.newPage()
    await other.goto(`${primary}/profile`)
    await other.evaluate(
      ({ name, flow, forged }) => {
        const other = 'f'.repeat(32)
        new BroadcastChannel(`tiktok-connect:${other}`).postMessage({ ...forged, flow: other })
        new BroadcastChannel('tiktok-connect').postMessage({ ...forged, flow })
        new BroadcastChannel(name).postMessage({ ...forged, flow: other })
        new BroadcastChannel(name).postMessage({ ...forged, v: 2, flow })
        new BroadcastChannel(name).postMessage(`{"v":1,"flow":"${flow}","type":"done"}`)
      },
      { name, flow, forged },
    )
    // Another origin (a frame of the sandbox) and this page itself, by window.postMessage.
    await page.evaluate((src) => {
      const frame = document.createElement('iframe')
      frame.src = src
      document.body.append(frame)
      return new Promise((resolve) => frame.addEventListener('load', resolve))
    }, `${stack.sandboxOrigin}/webhooks`)
    const frame = page.frames().find((f) => f.url().startsWith(stack.sandboxOrigin))!
    await frame.evaluate(({ flow, forged }) => parent.postMessage({ ...forged, flow }, '*'), { flow, forged })
    await page.evaluate(({ flow, forged }) => postMessage({ ...forged, flow }, location.origin), { flow, forged })
    // Three on the flow's channel, two by postMessage.
    await page.waitForFunction(() => (window as unknown as { arrived: number }).arrived === 5)
    expect(await stillPending(page)).toBe(true)
    expect((await clientEvents(page)).map((e) => e.type)).toEqual(['opened'])

    // The real flow still completes.
    await popup.click('#authorize')
    await popup.waitForSelector('body[data-outcome="choose"]')
    await finishInPopup(popup, '#actions button')
    expect((await clientOutcome(page)).resolved).toMatchObject({ advertiser: { id: US.id } })
  })

  it('the API wrappers throw an Error with code, status, retryable and requestId; returnTo must be a path here', async () => {
    const { page, context } = demo
    await signIn(demo)
    await loadClient(page)
    const failures = await page.evaluate(async () => {
      const { client } = window as unknown as { client: Client }
      const caught = async (work: () => Promise<unknown>) => {
        try {
          await work()
          return null
        } catch (error) {
          const e = error as Error & Record<string, unknown>
          return { isError: e instanceof Error, code: e.code, status: e.status, retryable: e.retryable, requestId: e.requestId, message: e.message }
        }
      }
      const { accessToken } = JSON.parse(sessionStorage.getItem('demo_supabase_session')!)
      return {
        unauthorized: await caught(() => client.getConnection('not-a-token')),
        signedOut: await caught(() => client.getConnection(undefined)),
        notConnected: await caught(() => client.chooseAdvertiser(accessToken, '7412345678901234567')),
        disconnect: await client.disconnect(accessToken),
        offSite: await caught(() => client.connectTikTok({ accessToken, returnTo: '//evil.example/x' })),
      }
    })
    expect(failures.unauthorized).toMatchObject({ isError: true, code: 'unauthorized', status: 401, retryable: false, requestId: expect.stringMatching(/\S/) })
    // No token: said by the client, nothing sent.
    expect(failures.signedOut).toMatchObject({ isError: true, code: 'signed_out', status: 0, message: 'You are not signed in. Sign in, then try again.' })
    expect(failures.notConnected).toMatchObject({ isError: true, code: 'not_connected', status: 404 })
    expect(failures.disconnect).toMatchObject({ success: true, revoked: false, message: 'No TikTok account was connected.' })
    expect(failures.offSite).toMatchObject({ isError: true, code: 'invalid_return_to' })
    expect(context.pages()).toHaveLength(1)
  })
})

describe('the demo profile, through the client', () => {
  it('signs in (a wrong password first), connects in a popup, switches the advertiser with the picker (the In use mark follows), disconnects', async () => {
    const { page, primary } = demo
    await page.goto(`${primary}/profile`)
    await expectAccessible(page, 'profile: signed out')
    await page.fill('#password', 'not-the-password')
    await page.click('#sign-in-button')
    await page.waitForSelector('#sign-in-feedback.error:not(:empty)')
    expect(await page.textContent('#sign-in-feedback')).toBe(`Wrong email or password. The sandbox's user is ${DEMO_USER.email} / ${DEMO_USER.password}.`)
    await expectAccessible(page, 'profile: error')
    await page.fill('#password', DEMO_USER.password)
    await page.click('#sign-in-button')
    await page.waitForSelector('body[data-state="not-connected"]')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tiktok-heading')
    expect(await page.getAttribute('#status', 'role')).toBe('status')
    await expectAccessible(page, 'profile: not connected')

    const popup = await tiktokPopup(demo, () => page.click('#connect'))
    await popup.click('#authorize')
    await popup.waitForSelector('body[data-outcome="choose"]')
    await finishInPopup(popup, '#actions button')
    await page.waitForSelector('body[data-state="connected"]')
    expect(await page.locator('#event-log li').allTextContents()).toEqual(['opened (popup)', 'authorized', `connected (${US.id})`, 'closed'])
    const current = () => page.locator('#advertiser-list .choice.current .name').allTextContents()
    expect(await current()).toEqual([US.name])
    await expectAccessible(page, 'profile: connected')
    await shoot(page, 'profile-connected', true)
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await shoot(page, 'profile-connected-390', true)
    await page.setViewportSize(DESKTOP)

    await page.click(`#advertiser-list button[data-id="${EU.id}"]`)
    await page.waitForFunction((name) => document.querySelector('#advertiser-list .choice.current .name')?.textContent === name, EU.name)
    expect(await page.textContent('#status')).toBe(`TikTok is connected. This product uses ${EU.name}.`)
    expect(await page.textContent('#advertiser-feedback')).toBe(`This product now uses ${EU.name}.`)
    expect(await page.locator('#advertiser-list button[data-id]').evaluateAll((b) => b.map((x) => (x as HTMLElement).dataset.id))).toEqual([US.id])
    expect((await demoRow(demo)).advertiser_id).toBe(EU.id)

    await page.click('#disconnect')
    await page.click('#confirm-yes')
    await page.waitForSelector('body[data-state="not-connected"]')
    // Said once, not "TikTok disconnected, and TikTok confirmed…".
    expect(await page.textContent('#status')).toBe('TikTok is disconnected, and its access is revoked.')
    expect((await demoRow(demo)).access_token).toBeNull()
  })

  it('revoked at TikTok → Check with TikTok shows "TikTok access … was removed" → Reconnect (popup) connects again', async () => {
    const { page } = demo
    await signIn(demo)
    await connectInPopup(demo)
    const token = (await demoRow(demo)).access_token as string
    expect(await (await sandboxPost(demo, '/__sandbox/tiktok/revoke', { token })).json()).toEqual({ revoked: 1 })

    await page.click('#verify')
    await page.waitForSelector('body[data-state="revoked"]')
    expect(await page.textContent('#status')).toBe(`TikTok access to ${US.name} was removed. Reconnect to use it again.`)
    expect(await page.textContent('#connect')).toBe('Reconnect')
    expect(await page.isVisible('#disconnect')).toBe(false)
    expect(await page.getAttribute('#status-icon', 'class')).toBe('icon small failed')
    await expectAccessible(page, 'profile: revoked')
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await shoot(page, 'profile-revoked-390', true)
    await page.setViewportSize(DESKTOP)

    // Reconnect is the same button, on the revoked profile.
    await connectInPopup(demo)
    const row = await demoRow(demo)
    expect(row.revoked_at).toBeNull()
    expect(row.access_token).not.toBe(token)
  })
})

describe('the callback page', () => {
  it('every state: working, choosing, connected, choosing again after the sweep cleared the choice (the profile asks too), denied, nothing in progress; the popup placeholder', async () => {
    const { page, primary } = demo
    const { authorized, denied } = await callbackUrls(demo)
    // A slow TikTok keeps the working state up long enough to check it (under the Worker's 8 s timeout).
    await sandboxPost(demo, '/__sandbox/faults', { target: 'token', fault: { latencyMs: 5000 } })
    await page.goto(authorized)
    expect(await page.getAttribute('#icon', 'class')).toBe('icon pending')
    expect(await page.getAttribute('main', 'aria-busy')).toBe('true')
    await expectAccessible(page, 'callback: working')
    expect(await page.getAttribute('body', 'data-outcome')).toBeNull()

    await page.waitForSelector('body[data-outcome="choose"]', { timeout: 15_000 })
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('title')
    // Only the outcome is announced, not the whole card.
    expect(await page.getAttribute('main', 'aria-live')).toBeNull()
    expect(await page.textContent('#announce')).toBe(`${await page.textContent('#title')}. ${await page.textContent('#message')}`)
    await expectAccessible(page, 'callback: choosing')
    await shoot(page, 'callback-choose', true)
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await shoot(page, 'callback-choose-390', true)
    await page.setViewportSize(DESKTOP)
    await page.click('#actions a')
    await page.waitForSelector('body[data-state="connected"]')

    // The sweep finds the chosen advertiser gone from the grant and clears the choice.
    expect(await (await sandboxPost(demo, '/__sandbox/tiktok/remove-advertiser', { advertiser_id: US.id })).json()).toEqual({ changed: 1 })
    await runSweep(demo)
    await profileShows(demo, 'choosing')
    expect(await page.locator('#advertiser-list .choice.current').count()).toBe(0)
    expect(await page.locator('#advertiser-list button[data-id]').count()).toBe(1)
    await expectAccessible(page, 'profile: choosing')

    // The same callback again (a reload, a second tab): one advertiser left, and still a choice,
    // with no default this time.
    await page.goto(authorized)
    await page.waitForSelector('body[data-outcome="choose"]')
    expect(await page.locator('button.choice').evaluateAll((b) => b.map((x) => (x as HTMLElement).dataset.id))).toEqual([EU.id])
    expect(await page.locator('button.choice .badge').count()).toBe(0)
    expect(await page.textContent('#message')).toMatch(/no longer shared/)
    expect(await page.textContent('#actions')).toBe('Decide later')
    await expectAccessible(page, 'callback: choosing again')
    await page.click(`button.choice[data-id="${EU.id}"]`)
    await page.waitForSelector('body[data-outcome="success"]')
    expect(await page.getAttribute('#icon', 'class')).toBe('icon done')
    await page.waitForURL(`${primary}/profile`)
    await page.waitForSelector('body[data-state="connected"]')
    expect((await demoRow(demo)).advertiser_id).toBe(EU.id)
    expect(exchangeCalls(demo)).toBe(1)

    // A revisit shows the last outcome without redirecting: the connected state, at rest.
    await page.goto(`${primary}/oauth/callback`)
    await page.waitForSelector('body[data-outcome="success"]')
    expect(await page.textContent('#actions')).toBe('Continue')
    await expectAccessible(page, 'callback: connected')

    await page.goto(denied)
    await page.waitForSelector('body[data-outcome="denied"]')
    expect(await page.getAttribute('#icon', 'class')).toBe('icon failed')
    expect(await page.textContent('#actions')).toBe('Back to your profile')
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('title')
    await expectAccessible(page, 'callback: error (denied)')
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await page.setViewportSize(DESKTOP)

    const fresh = await demo.newContext()
    const nothing = await fresh.newPage()
    await nothing.goto(`${primary}/oauth/callback`)
    await nothing.waitForSelector('body[data-outcome="no_authorization"]')
    // Nothing was tried, so nothing says "try again".
    expect(await nothing.textContent('#actions')).toBe('Go to your profile')
    await expectAccessible(nothing, 'callback: nothing in progress')
    await nothing.goto(`${primary}/oauth/popup`)
    await expectAccessible(nothing, 'popup placeholder')
  })
})
