// Issue 16, items 2 and 3: `npm run dev` on the ports it suggests when the defaults are taken. The
// pages follow them (sign-in goes to the sandbox on --sandbox-port), a page of a team's own under
// local/ connects with a sandbox access token, the banner's curl lines work as printed, and a
// network failure on a page reads as a sentence.
import { execFileSync } from 'node:child_process'
import { copyFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_ADVERTISERS } from '../sandbox/app.ts'
import { ROOT } from '../scripts/stack.ts'
import { launchBrowser } from './browser.ts'
import { type DevRun, runDev } from './dev-run.ts'
import { finishInPopup } from './harness.ts'

// What `npm run dev` suggests when 8787 and 8790 are taken (README, "npm run dev, in detail").
const [WORKER, SANDBOX, INSPECTOR] = [8788, 8791, 18788]
const WORKER_ORIGIN = `http://localhost:${WORKER}`
const SANDBOX_ORIGIN = `http://127.0.0.1:${SANDBOX}`
const [US, EU] = DEMO_ADVERTISERS as [(typeof DEMO_ADVERTISERS)[0], (typeof DEMO_ADVERTISERS)[0]]
/** A page a team drops into local/ while npm run dev runs (git-ignored; removed afterwards). */
const OWN_PAGE = `e2e-own-page-${process.pid}.html`

let run: DevRun
let browser: Browser
let context: BrowserContext
let page: Page

beforeAll(async () => {
  run = runDev(['--port', String(WORKER), '--sandbox-port', String(SANDBOX), '--inspector-port', String(INSPECTOR)])
  await run.ready()
  expect(run.stdout(), run.stderr()).toContain('Press Ctrl+C to stop.')
  browser = await launchBrowser()
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  page = await context.newPage()
})

afterAll(async () => {
  rmSync(join(ROOT, 'local', OWN_PAGE), { force: true })
  await browser?.close()
  expect(await run?.stop()).toBe(0)
})

/** The popup `click` opens, once it shows the sandbox's TikTok page: on the sandbox's port. */
async function authorizeInPopup(from: Page, click: () => Promise<unknown>, advertiser: string) {
  const [popup] = await Promise.all([context.waitForEvent('page'), click()])
  await popup.waitForURL(`${SANDBOX_ORIGIN}/tiktok/portal/auth?**`)
  await popup.click('#authorize')
  await popup.waitForSelector('body[data-outcome="choose"]')
  await finishInPopup(popup, `button.choice[data-id="${advertiser}"]`)
  return from
}

describe('npm run dev -- --port 8788 --sandbox-port 8791', () => {
  it('the demo profile the banner names signs in on the sandbox at 8791 and connects TikTok there', async () => {
    const opened = /Open (\S+\/profile)/.exec(run.stdout())![1]!
    expect(opened).toBe(`${WORKER_ORIGIN}/profile`)
    await page.goto(opened)
    const signIn = page.waitForRequest((request) => request.url().includes('/auth/v1/token'))
    await page.click('#sign-in-button')
    expect(new URL((await signIn).url()).origin).toBe(SANDBOX_ORIGIN)
    await page.waitForSelector('body[data-state="not-connected"]')
    expect(await page.textContent('#sign-in-feedback')).toBe('')

    await authorizeInPopup(page, () => page.click('#connect'), US.id)
    await page.waitForSelector('body[data-state="connected"]')
    expect(await page.textContent('#status')).toBe(`TikTok is connected. This product uses ${US.name}.`)
  })

  it('a page of a team’s own, dropped into local/ while it runs, gets a sandbox access token and connects', async () => {
    expect(run.stdout()).toContain(`Your own page: put it in local/ and open ${WORKER_ORIGIN}/local/<name> (start from local/example.html)`)
    copyFileSync(join(ROOT, 'local/example.html'), join(ROOT, 'local', OWN_PAGE))
    const own = await context.newPage()
    // Served once npm run dev has copied it over (it watches local/).
    await expect.poll(async () => (await own.goto(`${WORKER_ORIGIN}/local/${OWN_PAGE}`))!.status(), { timeout: 10_000 }).toBe(200)
    await own.waitForFunction(() => document.getElementById('status')?.textContent !== 'Checking TikTok…')
    expect(await own.textContent('#status')).toBe(`TikTok is connected: ${US.name}.`)
    await authorizeInPopup(own, () => own.click('#connect-tiktok'), EU.id)
    await own.waitForFunction((name) => document.getElementById('status')?.textContent === `TikTok is connected: ${name}.`, EU.name)
    expect(await own.textContent('#problem')).toBe('')
  })

  it('the banner’s curl lines give a sandbox access token and read the connection with it', () => {
    const lines = run.stdout().split('\n')
    const at = lines.findIndex((line) => line.includes('A sandbox access token for curl'))
    const [token, read] = [lines[at + 1]!.trim(), lines[at + 2]!.trim()]
    expect(token).toMatch(new RegExp(`^TOKEN=\\$\\(curl .*'${SANDBOX_ORIGIN}/supabase/auth/v1/token\\?grant_type=password'`))
    expect(read).toBe(`curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:${WORKER}/api/tiktok/connection`)
    const answer = JSON.parse(execFileSync('sh', ['-c', `${token}\n${read} -s`], { encoding: 'utf8' }))
    expect(answer).toMatchObject({ connected: true, advertiser: EU })
  })

  it('a network failure on the sign-in reads as a sentence, not the browser’s "Failed to fetch"', async () => {
    const fresh = await browser.newContext()
    const offline = await fresh.newPage()
    await offline.route(`${SANDBOX_ORIGIN}/**`, (route) => route.abort('connectionrefused'))
    await offline.goto(`${WORKER_ORIGIN}/profile`)
    await offline.click('#sign-in-button')
    await offline.waitForSelector('#sign-in-feedback:not(:empty)')
    expect(await offline.textContent('#sign-in-feedback')).toBe(
      `Could not reach the sandbox's sign-in at ${SANDBOX_ORIGIN}/supabase. Check that npm run dev is still running, then try again.`,
    )
    await fresh.close()
  })
})
