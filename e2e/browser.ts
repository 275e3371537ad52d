import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'
import { ROOT } from '../scripts/stack.ts'

export const ARTIFACTS = join(ROOT, 'test-artifacts')

/**
 * Debian's Chromium, never a downloaded build; flags that keep it off the closed network, plus
 * `extraArgs` (e.g. `--host-resolver-rules=MAP demo.test 127.0.0.1` for a non-loopback host name).
 */
export async function launchBrowser(extraArgs: string[] = []): Promise<Browser> {
  mkdirSync(ARTIFACTS, { recursive: true })
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', ...extraArgs],
  })
}

/**
 * Submits the sandbox TikTok page's form (open in `page`) as its Authorize or Deny button would, and
 * returns where TikTok redirects the browser, so a test can open (or alter) the callback URL itself.
 */
export async function decideAtTikTok(page: Page, sandboxOrigin: string, decision: 'authorize' | 'deny'): Promise<string> {
  const form = await page.evaluate(() => Object.fromEntries(new FormData(document.querySelector('form')!) as unknown as Iterable<[string, string]>))
  const response = await fetch(`${sandboxOrigin}/tiktok/portal/auth/decision`, {
    method: 'POST',
    body: new URLSearchParams({ ...form, decision }),
    redirect: 'manual',
  })
  if (response.status !== 302) throw new Error(`the sandbox's TikTok answered ${response.status} to the ${decision} form, not 302`)
  return response.headers.get('location')!
}
