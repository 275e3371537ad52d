import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
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
