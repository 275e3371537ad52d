// `npm run dev:worker`: the Worker alone under `wrangler dev`, on the settings in .dev.vars. Without
// that file every setting is empty and each page says "not configured": say so before starting.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'

// Not stack.ts's ROOT: importing it would load the whole sandbox for a two-line check.
const ROOT = resolve(import.meta.dirname, '..')

if (!existsSync(join(ROOT, '.dev.vars'))) {
  console.error(`
npm run dev:worker runs the Worker alone, against real TikTok and Supabase, with the settings in
.dev.vars, and there is no .dev.vars. Either:
  npm run dev                               the Worker plus the offline sandbox; needs no settings
  cp .dev.vars.example .dev.vars            then fill in real values (never commit them), and run
                                            npm run dev:worker again
`)
  process.exit(1)
}

const wrangler = spawn(join(ROOT, 'node_modules/.bin/wrangler'), ['dev', ...process.argv.slice(2)], { cwd: ROOT, stdio: 'inherit' })
// Ctrl+C reaches wrangler directly (same terminal); a SIGTERM sent to this script alone is passed on.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => wrangler.kill(signal))
wrangler.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
