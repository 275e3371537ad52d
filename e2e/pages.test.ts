// Issue 16, items 6, 7 and 8 in a browser: the callback's open choice (neutral, a default nobody
// chose, an action on every card), the demo profile's states, the page in Russian, and a product's
// own name and accent from public/oauth/product.json. axe-core in light and dark at 1280 and 390 px
// on each state.
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { DEMO_ADVERTISERS } from '../sandbox/app.ts'
import { decideAtTikTok } from './browser.ts'
import {
  callbackUrls,
  connectInPopup,
  demoRow,
  DESKTOP,
  expectAccessible,
  expectTouchFriendly,
  MOBILE,
  sandboxPost,
  shoot,
  signIn,
  startAnswered,
  useDemo,
} from './harness.ts'

// 4 /start and 5 /exchange in all: under the Worker's 10 a minute.
const demo = useDemo('pages', { worker: 8882, sandbox: 8895 })
const [US, EU] = DEMO_ADVERTISERS as [(typeof DEMO_ADVERTISERS)[0], (typeof DEMO_ADVERTISERS)[0]]

/** The callback's cards as a person reads them: name, id, badge, action. */
const cards = (on: Page) =>
  on.locator('button.choice').evaluateAll((buttons) => buttons.map((b) => [...b.querySelectorAll('.name, .id, .badge, .go')].map((part) => part.textContent)))
const style = (on: Page, selector: string, property: string) =>
  on
    .locator(selector)
    .first()
    .evaluate((node, property) => getComputedStyle(node).getPropertyValue(property), property)
const box = async (on: Page, selector: string) => (await on.locator(selector).first().boundingBox())!

/** The product's settings file as a product would write it, served in place of the shipped one. */
/** Settles once page.js has put the words and the brand on the page (what callback.js waits for too). */
const wordsApplied = (on: Page) => on.evaluate(() => (self as unknown as { tiktokConnectPage: Promise<unknown> }).tiktokConnectPage.then(() => undefined))
const productSettings = (on: Page, settings: unknown) =>
  on.route(`${demo.primary}/oauth/product.json`, (route) => route.fulfill({ contentType: 'application/json', body: JSON.stringify(settings) }))

describe('the callback page, choosing', () => {
  it('is neutral while the choice is open: no success check, the stored account only "Selected by default", "Use this account" on each card, "Decide later" keeps it', async () => {
    const { page, primary } = demo
    const { authorized } = await callbackUrls(demo)
    await page.goto(authorized)
    await page.waitForSelector('body[data-outcome="choose"]')
    expect(await page.getAttribute('#icon', 'class')).toBe('icon choose')
    expect(await page.textContent('#title')).toBe('Choose an advertiser account')
    expect(await cards(page)).toEqual([
      [US.name, `ID ${US.id}`, 'Selected by default', 'Use this account'],
      [EU.name, `ID ${EU.id}`, 'Use this account'],
    ])
    // Nothing on the page claims a choice the user has not made.
    expect(await page.textContent('main')).not.toMatch(/Current|Keep the current/)
    expect(await page.textContent('#actions')).toBe('Decide later')
    await expectAccessible(page, 'callback: choosing (issue 16)')
    await page.setViewportSize(MOBILE)
    await expectTouchFriendly(page)
    await page.setViewportSize(DESKTOP)

    await page.click('#actions a')
    await page.waitForURL(`${primary}/profile`)
    await page.waitForSelector('body[data-state="connected"]')
    expect((await demoRow(demo)).advertiser_id).toBe(US.id)
  })

  it('speaks Russian to a browser that prefers it: the choice, an API error in its own words, the placeholder; <html lang="ru">', async () => {
    const context = await demo.newContext({ locale: 'ru-RU' })
    const page = await context.newPage()
    expect(await page.evaluate(() => navigator.languages)).toEqual(['ru-RU'])
    await signIn(demo, page, 'redirect')
    await Promise.all([startAnswered(demo, page), page.click('#connect')])
    await page.waitForURL(`${demo.stack.sandboxOrigin}/tiktok/portal/auth?**`)
    const authorized = await decideAtTikTok(page, demo.stack.sandboxOrigin, 'authorize')
    const denied = await decideAtTikTok(page, demo.stack.sandboxOrigin, 'deny')

    await page.goto(authorized)
    await page.waitForSelector('body[data-outcome="choose"]')
    expect(await page.getAttribute('html', 'lang')).toBe('ru')
    expect(await page.title()).toBe('Выберите рекламный аккаунт')
    expect(await page.textContent('#message')).toBe(
      'TikTok открыл доступ к нескольким рекламным аккаунтам. Выберите, какой использовать; позже это можно изменить.',
    )
    expect(await cards(page)).toEqual([
      [US.name, `ID ${US.id}`, 'Выбран по умолчанию', 'Использовать'],
      [EU.name, `ID ${EU.id}`, 'Использовать'],
    ])
    expect(await page.textContent('#actions')).toBe('Решить позже')
    await expectAccessible(page, 'callback: choosing, ru')
    await page.setViewportSize(MOBILE)
    await shoot(page, 'callback-choose-ru-390', true)
    await page.setViewportSize(DESKTOP)

    await page.goto(denied)
    await page.waitForSelector('body[data-outcome="denied"]')
    expect([await page.textContent('#title'), await page.textContent('#actions')]).toEqual(['TikTok не подключён', 'Вернуться в профиль'])

    // The API answers in English; the page says the same in Russian.
    const tampered = new URL(authorized)
    tampered.searchParams.set('state', `${tampered.searchParams.get('state')!.slice(0, -2)}AA`)
    await page.goto(tampered.toString())
    await page.waitForSelector('body[data-outcome="invalid_state"]')
    expect(await page.textContent('#title')).toBe('Ссылка недействительна')
    expect(await page.textContent('#message')).toBe('Эта ссылка для подключения TikTok недействительна. Начните подключение заново в своём профиле.')
    await expectAccessible(page, 'callback: error, ru')

    await page.goto(`${demo.primary}/oauth/popup`)
    await wordsApplied(page)
    expect(await page.getAttribute('html', 'lang')).toBe('ru')
    expect(await page.textContent('h1')).toBe('Открываем TikTok…')
    expect(await page.title()).toBe('Открываем TikTok…')
  })

  it('takes the first of navigator.languages it has words for, by tag and then by language; English otherwise', async () => {
    const picked: Record<string, string> = {}
    for (const languages of [['de-CH', 'ru', 'en'], ['RU-ua'], ['pt-BR', 'pt'], ['en-GB', 'ru-RU']]) {
      const context = await demo.newContext()
      const page = await context.newPage()
      await page.addInitScript((languages) => Object.defineProperty(navigator, 'languages', { get: () => languages }), languages)
      await page.goto(`${demo.primary}/oauth/popup`)
      await wordsApplied(page)
      picked[languages.join(',')] = `${await page.getAttribute('html', 'lang')}: ${await page.textContent('h1')}`
    }
    expect(picked).toEqual({
      'de-CH,ru,en': 'ru: Открываем TikTok…',
      'RU-ua': 'ru: Открываем TikTok…',
      'pt-BR,pt': 'en: Opening TikTok…',
      'en-GB,ru-RU': 'en: Opening TikTok…',
    })
  })

  it("takes the product's name and accent from public/oauth/product.json: in the sentences of both languages, on every card's action, with a text colour that reads on it", async () => {
    const { page } = demo
    await productSettings(page, { name: 'Acme Ads', accent: '#0b6e4f' })
    const { authorized } = await callbackUrls(demo)
    await page.goto(authorized)
    await page.waitForSelector('body[data-outcome="choose"]')
    expect(await page.textContent('#message')).toBe('TikTok shared several advertiser accounts. Choose the one Acme Ads should use; you can change it later.')
    expect(await style(page, 'button.choice .go', 'background-color')).toBe('rgb(11, 110, 79)')
    expect(await style(page, 'button.choice .go', 'color')).toBe('rgb(255, 255, 255)')
    await expectAccessible(page, 'callback: choosing, Acme Ads')

    // A light accent gets dark text. (The reload shows the stored choice again; page.js reads the settings anew.)
    await page.unroute(`${demo.primary}/oauth/product.json`)
    await productSettings(page, { name: 'Acme Ads', accent: '#ffd166' })
    await page.reload()
    await page.waitForSelector('body[data-outcome="choose"]')
    await page.waitForFunction(() => document.documentElement.style.getPropertyValue('--accent') === '#ffd166')
    expect(await style(page, 'button.choice .go', 'color')).toBe('rgb(22, 24, 29)')
    await expectAccessible(page, 'callback: choosing, a light accent')

    // Russian keeps the name as it is written.
    const ru = await (await demo.newContext({ locale: 'ru-RU' })).newPage()
    await productSettings(ru, { name: 'Acme Ads' })
    await ru.goto(`${demo.primary}/oauth/popup`)
    await wordsApplied(ru)
    expect(await ru.textContent('.note')).toContain('Доступ к нему получит Acme Ads.')
  })
})

describe('the demo profile', () => {
  it('every state it can be in, light and dark, 1280 and 390 px: sizes and colours that read right, confirmation before Disconnect, each sentence under its button', async () => {
    const { page, primary } = demo
    await signIn(demo)
    await page.setViewportSize(MOBILE)
    // The two radios are one size, whatever their labels' lengths.
    const radios = await page
      .locator('#mode input')
      .evaluateAll((inputs) => inputs.map((i) => [i.getBoundingClientRect().width, i.getBoundingClientRect().height]))
    expect(radios[0]).toEqual(radios[1])
    await page.setViewportSize(DESKTOP)
    // Primary and danger keep their colour in the dark.
    const primaryColour = await style(page, '#connect', 'background-color')
    await page.emulateMedia({ colorScheme: 'dark' })
    expect(await style(page, '#connect', 'background-color')).toBe(primaryColour)
    await page.emulateMedia({ colorScheme: 'light' })

    // A network failure is a sentence, not the browser's "Failed to fetch".
    await page.route(`${primary}/api/tiktok/connection`, (route) => route.abort())
    await page.reload()
    await page.waitForSelector('#feedback:not(:empty)')
    expect(await page.textContent('#feedback')).toBe('Could not reach the server. Check your connection, then try again.')
    await page.unroute(`${primary}/api/tiktok/connection`)

    await connectInPopup(demo)
    // Connected: no parentheses, no raw id in the sentence; the window choice is gone.
    expect(await page.textContent('#status')).toBe(`TikTok is connected. This product uses ${US.name}.`)
    expect(await page.isVisible('#mode')).toBe(false)
    // The account in use has the heavier border, and the mark.
    const borders = await page
      .locator('#advertiser-list .choice')
      .evaluateAll((rows) =>
        rows.map((r) => [r.classList.contains('current'), getComputedStyle(r).borderTopWidth, r.querySelector('.badge')?.textContent ?? null]),
      )
    expect(borders).toEqual([
      [true, '2px', 'In use'],
      [false, '1px', null],
    ])
    const danger = await style(page, '#disconnect', 'background-color')
    await page.emulateMedia({ colorScheme: 'dark' })
    expect(await style(page, '#disconnect', 'background-color')).toBe(danger)
    await page.emulateMedia({ colorScheme: 'light' })
    await expectAccessible(page, 'profile: connected (issue 16)')

    // On a phone, the buttons stack at one width.
    await page.setViewportSize(MOBILE)
    const buttons = await Promise.all(['#connect', '#verify', '#disconnect'].map((s) => box(page, s)))
    expect(new Set(buttons.map((b) => `${b.x},${b.width}`)).size).toBe(1)
    expect(buttons.map((b) => b.y)).toEqual([...buttons.map((b) => b.y)].sort((a, b) => a - b))

    // Check with TikTok says what it found, right under the buttons, on screen.
    await page.click('#verify')
    await page.waitForSelector('#feedback.ok:not(:empty)')
    expect(await page.textContent('#feedback')).toBe('TikTok confirms the access works: 2 advertiser accounts shared.')
    await expectUnder(page, '#feedback', '#disconnect')
    await expectAccessible(page, 'profile: checked with TikTok')

    // So does a failure.
    await sandboxPost(demo, '/__sandbox/faults', { target: 'advertisers', fault: { status: 503 }, times: 3 })
    const refused = page.waitForResponse((response) => response.url() === `${primary}/api/tiktok/connection?verify=true`)
    await page.click('#verify')
    const answer = (await (await refused).json()) as { code: string; error: string }
    expect(answer.code).toBe('tiktok_unavailable')
    await page.waitForSelector('#feedback.error:not(:empty)')
    // The Worker's own sentence, under the button that asked.
    expect(await page.textContent('#feedback')).toBe(answer.error)
    await expectUnder(page, '#feedback', '#disconnect')
    await expectAccessible(page, 'profile: an error under the buttons')

    // Disconnect asks first; keeping it changes nothing.
    await page.click('#disconnect')
    await page.waitForSelector('#confirm-disconnect[open]')
    expect(await page.textContent('#confirm-text')).toBe(
      `This product stops using “${US.name}”, and TikTok revokes its access. You can connect again at any time.`,
    )
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('confirm-no')
    await expectAccessible(page, 'profile: confirm disconnect')
    await shoot(page, 'profile-confirm-390', true)
    await page.click('#confirm-no')
    await page.waitForSelector('#confirm-disconnect', { state: 'hidden' })
    expect(await page.getAttribute('body', 'data-state')).toBe('connected')
    expect((await demoRow(demo)).access_token).not.toBeNull()
    expect(demo.stack.sandbox.tiktok.requests.filter((r) => r.path.endsWith('/oauth2/revoke_token/'))).toEqual([])

    await page.click('#disconnect')
    await page.click('#confirm-yes')
    await page.waitForSelector('body[data-state="not-connected"]')
    expect(await page.textContent('#status')).toBe('TikTok is disconnected, and its access is revoked.')
    expect(await page.isVisible('#mode')).toBe(true)
    expect((await demoRow(demo)).access_token).toBeNull()
  })
})

/** `feedback` sits right under `control` (within 40 px) and inside the window, with no scrolling. */
async function expectUnder(on: Page, feedback: string, control: string) {
  const [said, button] = [await box(on, feedback), await box(on, control)]
  const viewport = on.viewportSize()!
  expect(said.y - (button.y + button.height)).toBeGreaterThanOrEqual(0)
  expect(said.y - (button.y + button.height)).toBeLessThan(40)
  expect(said.y + said.height).toBeLessThanOrEqual(viewport.height)
}
