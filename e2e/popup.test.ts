// Issue 16, items 4 and 5 in a browser: a closed popup is reported as soon as the client can know
// (the placeholder, the callback after it has spoken) and only TikTok's pages get the long grace; a
// click after a close starts again at once; nobody signed in, or signed out mid-way, is said in a
// sentence. The product page's clock is Playwright's (page.clock): no test waits for real seconds.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { DEMO_ADVERTISERS } from '../sandbox/app.ts'
import { ROOT } from '../scripts/stack.ts'
import {
  channelSeen,
  clientEvents,
  clientOutcome,
  demoRow,
  finishInPopup,
  signIn,
  startClient,
  stillPending,
  tiktokPopup,
  useDemo,
  watchChannels,
} from './harness.ts'

// 5 /start and 3 /exchange in all: under the Worker's 10 a minute.
const demo = useDemo('popup', { worker: 8881, sandbox: 8894 })
const [US, EU] = DEMO_ADVERTISERS as [(typeof DEMO_ADVERTISERS)[0], (typeof DEMO_ADVERTISERS)[0]]

/** From now on the product page's timers run only when the test says: what the client decides without them, it decides at once. */
const stopTheClock = (on: Page) => on.clock.pauseAt(Date.now() + 1000)

describe('a closed popup', () => {
  it('closed on /oauth/popup, before TikTok: popup_closed within a second', async () => {
    const { page, context, primary } = demo
    await page.clock.install()
    await signIn(demo)
    // /start held: the popup stays on this product's placeholder.
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    await page.route(`${primary}/api/tiktok/oauth/start`, async (route) => {
      await held
      await route.abort()
    })
    const [popup] = await Promise.all([context.waitForEvent('page'), startClient(page)])
    await popup.waitForURL(`${primary}/oauth/popup`)
    await stopTheClock(page)
    await popup.close()
    await page.clock.runFor(1000)
    expect(await stillPending(page)).toBe(false)
    expect((await clientOutcome(page)).rejected).toMatchObject({ code: 'popup_closed', isError: true })
    expect((await clientEvents(page)).map((e) => e.type)).toEqual(['opened', 'error', 'closed'])
    release()
  })

  it('closed at TikTok, whose pages may hide the window from the client: still pending at 14 s, popup_closed by 15.5 s', async () => {
    const { page } = demo
    await page.clock.install()
    await signIn(demo)
    const atTikTok = await tiktokPopup(demo, () => startClient(page))
    await stopTheClock(page)
    await atTikTok.close()
    await page.clock.runFor(14_000)
    expect(await stillPending(page)).toBe(true)
    await page.clock.runFor(1_500)
    const outcome = await clientOutcome(page)
    expect(outcome.rejected).toMatchObject({ code: 'popup_closed', isError: true })
    expect(await clientEvents(page)).toEqual([
      { type: 'opened', mode: 'popup' },
      { type: 'error', code: 'popup_closed', message: outcome.rejected.message },
      { type: 'closed' },
    ])
  })

  it('closed on the callback after it has spoken: nothing ends while it answers the pings; once closed, within a second, the client reads what the exchange stored', async () => {
    const { page, primary } = demo
    await watchChannels(page)
    await page.clock.install()
    await signIn(demo)
    const choosing = await tiktokPopup(demo, () => startClient(page))
    await choosing.click('#authorize')
    await choosing.waitForSelector('body[data-outcome="choose"]')
    // COOP has cut the handle (popup.closed reads true), so the client pings; the callback answers.
    await page.waitForFunction(() => (window as unknown as { seen: string[] }).seen.filter((s) => s === 'heard alive').length >= 4)
    expect(await stillPending(page)).toBe(true)
    expect((await clientEvents(page)).map((e) => e.type)).toEqual(['opened', 'authorized'])
    expect(await channelSeen(page)).toContain('sent ping')

    await stopTheClock(page)
    const reads = page.waitForRequest(`${primary}/api/tiktok/connection`, { timeout: 5000 })
    await choosing.close()
    await page.clock.runFor(1000)
    await reads
    // Closed after TikTok said yes: the exchange had stored the first advertiser.
    expect((await clientOutcome(page)).resolved).toMatchObject({ advertiser: { id: US.id } })
    expect((await clientEvents(page)).map((e) => e.type)).toEqual(['opened', 'authorized', 'connected', 'closed'])
    expect((await demoRow(demo)).advertiser_id).toBe(US.id)
  })

  it('a click while the earlier popup is closed opens a new one at once; the earlier flow ends with popup_closed, said to nobody', async () => {
    const { page, context } = demo
    await page.clock.install()
    await signIn(demo)
    const first = await tiktokPopup(demo, () => page.click('#connect'))
    await stopTheClock(page)
    await first.close()
    // No time passes on the page: only the click can end the first flow and open the second.
    const second = await tiktokPopup(demo, () => page.click('#connect'))
    expect(context.pages()).toHaveLength(2)
    expect(await page.locator('#event-log li').allTextContents()).toEqual(['opened (popup)', 'error (popup_closed)', 'closed', 'opened (popup)'])
    // A closed window is the user's own doing: the page says nothing about it.
    expect(await page.textContent('#feedback')).toBe('')

    await second.click('#authorize')
    await second.waitForSelector('body[data-outcome="choose"]')
    await finishInPopup(second, `button.choice[data-id="${EU.id}"]`)
    await page.waitForSelector('body[data-state="connected"]')
    expect((await demoRow(demo)).advertiser_id).toBe(EU.id)
  })
})

describe('signed out', () => {
  it("nobody signed in: the README's integration snippet rejects with signed_out, a sentence for the page, and no TypeError", async () => {
    const { page, context, primary } = demo
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const section = readme.slice(readme.indexOf('## Integrating'))
    const snippet = /```html\n([\s\S]*?)```/.exec(section)![1]!
    expect(snippet).toContain('supabase.auth.getSession()')
    // The snippet as a product page holds it, served on the product's origin; its Supabase session is null.
    await page.route(`${primary}/readme-snippet`, (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><title>snippet</title><script>
          window.shown = []
          window.supabase = { auth: { getSession: async () => ({ data: { session: null }, error: null }) } }
          window.showConnected = (connection) => shown.push({ connected: connection })
          window.showError = (message) => shown.push({ error: message })
        </script>${snippet}`,
      }),
    )
    const thrown: string[] = []
    page.on('pageerror', (error) => thrown.push(error.message))
    await page.goto(`${primary}/readme-snippet`)
    const popupClosed = context.waitForEvent('page').then(async (popup) => {
      if (!popup.isClosed()) await popup.waitForEvent('close')
    })
    await page.click('#connect-tiktok')
    await page.waitForFunction(() => (window as unknown as { shown: unknown[] }).shown.length > 0)
    expect(await page.evaluate(() => (window as unknown as { shown: unknown[] }).shown)).toEqual([{ error: 'You are not signed in. Sign in, then try again.' }])
    expect(thrown).toEqual([])
    // The popup the click had to open at once is closed again.
    await popupClosed
    expect(context.pages()).toHaveLength(1)
  })

  it('signed out while the popup is at TikTok: the connection is stored for who started it, and the page says TikTok is connected and to sign in again', async () => {
    const { page } = demo
    await signIn(demo)
    const popup = await tiktokPopup(demo, () => page.click('#connect'))
    await page.click('#sign-out')
    await page.waitForSelector('body[data-state="signed-out"]')
    await popup.click('#authorize')
    await popup.waitForSelector('body[data-outcome="choose"]')
    await finishInPopup(popup, `button.choice[data-id="${EU.id}"]`)

    await page.waitForSelector('#sign-in-feedback:not(:empty)')
    expect(await page.textContent('#sign-in-feedback')).toBe('TikTok is connected, but you were signed out here. Sign in again to see it.')
    expect(await page.isVisible('#sign-in-button')).toBe(true)
    expect((await demoRow(demo)).advertiser_id).toBe(EU.id)

    await page.click('#sign-in-button')
    await page.waitForSelector('body[data-state="connected"]')
    expect(await page.textContent('#status')).toBe(`TikTok is connected. This product uses ${EU.name}.`)
  })
})
