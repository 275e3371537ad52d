// Issue 16, item 1: `npm test` runs on its own settings, whatever a developer keeps in `.dev.vars`.
// The workerd suite runs in a copy of this checkout (node_modules linked, not copied), so the
// developer's own `.dev.vars`, and an `npm run dev` reading it meanwhile, are never touched.
import { spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from '../../scripts/stack.ts'

/** What a developer pointing a local run at their own receiver and their own site would keep there. */
const DEV_VARS = [
  'WEBHOOK_URL=https://hooks.my-product.example/tiktok',
  'ALLOWED_ORIGINS=https://www.my-product.example',
  'TIKTOK_API_BASE=https://business-api.tiktok.com/open_api/v1.3',
  'SUPABASE_URL=https://my-project.supabase.co',
].join('\n')

/** Not part of what the suite reads: local state, outputs, and any local settings of the developer. */
const LEFT_OUT = new Set(['.git', 'node_modules', '.wrangler', 'test-artifacts', '.bench', 'dist', 'bench', 'e2e'])
const isLocalSettings = (name: string) => name === '.dev.vars' || name.startsWith('.dev.vars.') || name === '.env' || name.startsWith('.env.')

let copy: string

beforeAll(() => {
  copy = mkdtempSync(join(tmpdir(), 'workerd-settings-'))
  cpSync(ROOT, copy, {
    recursive: true,
    filter: (source) => {
      const path = relative(ROOT, source)
      const top = path.split('/')[0]!
      // docs/: the pages the workerd suite holds to the code, not the screenshots.
      if (top === 'docs') return path === 'docs' || path.endsWith('.md')
      return path === '' || (!LEFT_OUT.has(top) && !(path === top && isLocalSettings(top)))
    },
  })
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'))
  writeFileSync(join(copy, '.dev.vars'), `${DEV_VARS}\n`)
})

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true })
})

/** `vitest run` (the first half of `npm test`) in `cwd`; its exit code and everything it printed. */
function workerdSuite(cwd: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run'], {
    cwd,
    env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1', CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk))
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, output })))
}

describe('npm test beside a .dev.vars', () => {
  it("passes with WEBHOOK_URL and another site's ALLOWED_ORIGINS in .dev.vars, and never reads it", { timeout: 300_000 }, async () => {
    const files = readdirSync(join(copy, 'test'), { recursive: true, encoding: 'utf8' }).filter(
      (name) => name.endsWith('.test.ts') && !name.startsWith('node/'),
    )
    const { code, output } = await workerdSuite(copy)
    expect(code, output.slice(-4000)).toBe(0)
    // Every file ran: a suite that found nothing to run would pass too.
    expect(output).toMatch(new RegExp(`Test Files\\s+${files.length} passed \\(${files.length}\\)`))
    expect(output).not.toContain('Using secrets defined in')
  })
})
