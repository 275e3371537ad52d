import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createSandbox } from '../sandbox/app.ts'
import { openDatabase } from '../sandbox/pglite.ts'
import { serve } from './serve.ts'

export const ROOT = resolve(import.meta.dirname, '..')
const DEFAULT_WORKER_PORT = 8787
const DEFAULT_SANDBOX_PORT = 8790

/** Reads a dotenv file: `KEY=value` lines, `#` comments. */
export function readEnvFile(path: string): Record<string, string> {
  const vars: Record<string, string> = {}
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line)
    if (match) vars[match[1]!] = match[2]!.replace(/^"(.*)"$/, '$1')
  }
  return vars
}

/**
 * The committed local configuration (sandbox/dev.env) moved to other ports, then `.dev.vars` on top,
 * as wrangler itself would layer them.
 */
export function localConfig(workerPort: number, sandboxPort: number, useDevVars = true): Record<string, string> {
  const vars = readEnvFile(join(ROOT, 'sandbox/dev.env'))
  for (const [key, value] of Object.entries(vars)) {
    vars[key] = value.replaceAll(`:${DEFAULT_WORKER_PORT}`, `:${workerPort}`).replaceAll(`:${DEFAULT_SANDBOX_PORT}`, `:${sandboxPort}`)
  }
  const devVars = join(ROOT, '.dev.vars')
  if (useDevVars && existsSync(devVars)) Object.assign(vars, readEnvFile(devVars))
  return vars
}

export type Stack = {
  workerOrigin: string
  sandboxOrigin: string
  sandbox: Awaited<ReturnType<typeof createSandbox>>
  vars: Record<string, string>
  /** What wrangler printed, for a failing test to show. */
  output: () => string
  stop: () => Promise<void>
}

async function waitFor(url: string, child: ChildProcess, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output()}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      if (res.status < 500 || res.status === 503) return
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`wrangler dev did not answer ${url} within ${timeoutMs} ms:\n${output()}`)
}

/** Starts the sandbox in this process and the Worker under `wrangler dev`, pointed at it. */
export async function startStack(
  options: { workerPort?: number; sandboxPort?: number; useDevVars?: boolean; quiet?: boolean } = {},
): Promise<Stack> {
  const workerPort = options.workerPort ?? DEFAULT_WORKER_PORT
  const sandboxPort = options.sandboxPort ?? DEFAULT_SANDBOX_PORT
  const vars = localConfig(workerPort, sandboxPort, options.useDevVars ?? true)
  const sandboxOrigin = `http://127.0.0.1:${sandboxPort}`

  // wrangler reads the layered values from one file; it lives outside the repo and dies with the run.
  // So does the Worker's local state (the rate limiters' counters): the sandbox starts empty each
  // run, and a run must not inherit the counts of another run in the same minute.
  const runDir = mkdtempSync(join(tmpdir(), 'tiktok-connect-'))
  const envFile = join(runDir, 'local.env')
  writeFileSync(envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 })

  let log = ''
  const child = spawn(
    join(ROOT, 'node_modules/.bin/wrangler'),
    ['dev', '--port', String(workerPort), '--ip', '127.0.0.1', '--env-file', envFile, '--show-interactive-dev-session=false', '--inspector-port', String(workerPort + 10000), '--persist-to', join(runDir, 'state')],
    { cwd: ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const collect = (chunk: Buffer) => {
    log += chunk.toString()
    if (!options.quiet) process.stdout.write(chunk)
  }
  child.stdout!.on('data', collect)
  child.stderr!.on('data', collect)

  // The sandbox's database loads while wrangler starts: the Worker asks nothing of it before a request.
  let sandbox: Stack['sandbox']
  let server: Server
  try {
    sandbox = await createSandbox({
      origin: sandboxOrigin,
      workerOrigins: (vars.ALLOWED_ORIGINS ?? '').split(',').map((o) => o.trim()),
      appId: vars.TIKTOK_APP_ID!,
      appSecret: vars.TIKTOK_APP_SECRET!,
      supabaseSecretKey: vars.SUPABASE_SECRET_KEY!,
      webhookSecret: vars.WEBHOOK_SECRET,
      database: await openDatabase(),
    })
    server = await serve(sandbox.app.fetch, sandboxPort)
  } catch (error) {
    child.kill('SIGTERM')
    rmSync(runDir, { recursive: true, force: true })
    throw error
  }

  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
    await new Promise((r) => server.close(r))
    server.closeAllConnections()
    await sandbox.supabase.database.close()
    rmSync(runDir, { recursive: true, force: true })
  }
  const workerOrigin = `http://localhost:${workerPort}`
  try {
    await waitFor(`http://127.0.0.1:${workerPort}/api/tiktok/health`, child, () => log, 90_000)
  } catch (error) {
    await stop()
    throw error
  }
  return { workerOrigin, sandboxOrigin, sandbox, vars, output: () => log, stop }
}
