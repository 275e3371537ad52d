// docs/deploy.md's wrangler.toml snippets, built as a deploy would build them (offline: --dry-run).
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { ROOT, snippet } from './snippets.ts'

const dir = mkdtempSync(join(tmpdir(), 'docs-deploy-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** wrangler.toml with the routes snippet before its first table and the staging one at the end. */
function config(): string {
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')
    .replace('main = "src/index.ts"', `main = "${join(ROOT, 'src/index.ts')}"`)
    .replace('directory = "./public"', `directory = "${join(ROOT, 'public')}"`)
  const first = toml.indexOf('\n[')
  return `${toml.slice(0, first)}\n${snippet('docs/deploy.md', 'routes').code}\n${toml.slice(first)}\n${snippet('docs/deploy.md', 'staging').code}\n`
}

async function dryRun(...args: string[]): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [join(ROOT, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', join(dir, 'dist'), ...args],
    { cwd: dir, env: { ...process.env, NO_COLOR: '1', WRANGLER_SEND_METRICS: 'false' }, timeout: 120_000 },
  )
  return stdout + stderr
}

describe('docs/deploy.md', () => {
  writeFileSync(join(dir, 'wrangler.toml'), config())

  it(`the routes (${snippet('docs/deploy.md', 'routes').where}) build, with workers.dev off`, async () => {
    const out = await dryRun()
    expect(out).toContain('--dry-run: exiting now.')
    // The one warning expected: routes on /oauth/* also match the assets (the callback page is one).
    expect(out).not.toMatch(/Processing wrangler\.toml configuration/)
  }, 120_000)

  it(`the staging environment (${snippet('docs/deploy.md', 'staging').where}) builds with every binding the top level has`, async () => {
    const out = await dryRun('--env', 'staging')
    expect(out).toContain('--dry-run: exiting now.')
    expect(out).not.toMatch(/not inherited/)
    for (const binding of ['env.QUOTA', 'env.EVENTS', 'env.USER_RATE_LIMIT', 'env.CLIENT_RATE_LIMIT', 'env.SWEEP_MAX_PER_RUN']) expect(out).toContain(binding)
  }, 120_000)
})
