import type { HealthAnswer } from '../src/health-answer.ts'
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createSandbox, DEMO_USER } from '../sandbox/app.ts'
import type { SandboxDatabase } from '../sandbox/database.ts'
import { openDatabase } from '../sandbox/pglite.ts'
import type { Tier } from '../sandbox/types.ts'
import { readQuotaSettings } from '../src/quota/settings.ts'
import { describePortsInUse, holderOf, PORT_CHOICE, type PortRole, portsInUse, printable } from './ports.ts'
import { type DevAssets, devAssets } from './dev-assets.ts'
import { serve } from './serve.ts'

export const ROOT = resolve(import.meta.dirname, '..')
export const DEFAULT_WORKER_PORT = 8787
export const DEFAULT_SANDBOX_PORT = 8790
/** wrangler's debugger port sits this far above the Worker's, so two runs on two ports never share one. */
const INSPECTOR_OFFSET = 10_000
const RUN_DIR_PREFIX = 'tiktok-connect-'

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
  if (useDevVars) Object.assign(vars, devVars())
  return vars
}

/** What `.dev.vars` sets (empty when there is none): those names win over sandbox/dev.env. */
export function devVars(): Record<string, string> {
  const path = join(ROOT, '.dev.vars')
  return existsSync(path) ? readEnvFile(path) : {}
}

/**
 * The TikTok stand-in's tier: the Worker's own TIKTOK_QPS and TIKTOK_QPM, read with the Worker's
 * parser, so both sides hold the same numbers. Neither set: not enforced, since the benchmark and the
 * suites that hammer the stand-in run far beyond any tier. Malformed: not enforced (the governor refuses it).
 */
export function sandboxTier(vars: Record<string, string | undefined>): Tier | undefined {
  if (!vars.TIKTOK_QPS?.trim() && !vars.TIKTOK_QPM?.trim()) return undefined
  const { settings } = readQuotaSettings(vars)
  return settings && { qps: settings.qps, qpm: settings.qpm }
}

export const defaultInspectorPort = (workerPort: number) =>
  workerPort + INSPECTOR_OFFSET <= 65535 ? workerPort + INSPECTOR_OFFSET : workerPort - INSPECTOR_OFFSET

/**
 * A shell line that signs the demo user in with Supabase Auth's password grant at `supabaseUrl` and
 * keeps the access token in $TOKEN: the same call a product's Supabase client makes. sed, not jq,
 * which many machines lack.
 */
export const tokenCommand = (supabaseUrl: string) =>
  `TOKEN=$(curl -s -X POST '${supabaseUrl.replace(/\/+$/, '')}/auth/v1/token?grant_type=password' -H 'content-type: application/json' ` +
  `-d '{"email":"${DEMO_USER.email}","password":"${DEMO_USER.password}"}' | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')`

/** A start-up failure a person can act on: shown as its message alone, no stack trace. */
export class StackError extends Error {
  override name = 'StackError'
}

/** What the Worker's `/api/tiktok/health` answers (src/routes/health.ts). */
export type WorkerHealth = HealthAnswer

export type Stack = {
  workerOrigin: string
  sandboxOrigin: string
  sandbox: Awaited<ReturnType<typeof createSandbox>>
  vars: Record<string, string>
  /** The Worker's health when it first answered: its settings problems, if any. */
  health: WorkerHealth
  /** The layered settings wrangler reads; deleted when the run ends, however it ends. */
  settingsFile: string
  /** Settles when wrangler exits, with its exit code: on its own, or through `stop`. */
  exited: Promise<number | null>
  /** What wrangler printed, for a failing test to show. */
  output: () => string
  stop: () => Promise<void>
}

/** Each problem the Worker's health names, where that setting came from, and what to do. */
export function describeProblems(health: WorkerHealth, fromDevVars: string[]): string {
  if (health.problems.length === 0) return describeSchema(health)
  const source = (name: string) => (/_RATE_LIMIT$/.test(name) ? 'wrangler.toml' : fromDevVars.includes(name) ? '.dev.vars' : 'sandbox/dev.env')
  const lines = health.problems.map((p) => `    ${p.name} (${source(p.name)}): ${p.problem}${p.reason === 'not set' ? '' : ` — ${p.reason}`}`)
  return [
    '  ✗ The Worker is running, but its settings have problems: every API call answers 500',
    '    "misconfigured" (the page says "not configured") until they are fixed:',
    ...lines,
    '    Fix them in .dev.vars (.dev.vars.example says what each one is and how to make it), or delete',
    "    a line there to use the sandbox's value; then stop and start npm run dev again.",
  ].join('\n')
}

/** Settings fine, schema not: what the database lacks, and the file to apply. */
function describeSchema(health: WorkerHealth): string {
  if (health.schema === 'unknown')
    return [
      "  ✗ The Worker is running, but the database did not answer whether it holds the Worker's schema:",
      '    check SUPABASE_URL and SUPABASE_SECRET_KEY (every API call fails until it answers).',
    ].join('\n')
  return [
    `  ✗ The Worker is running, but the database's schema is ${health.schema}: every API call answers 500`,
    `    "misconfigured" until ${health.schema_file} is applied (supabase db push, or the SQL editor).`,
  ].join('\n')
}

/**
 * The Worker's own local addresses that ALLOWED_ORIGINS leaves out (valid settings, so health is
 * happy, yet the demo page gets origin_not_allowed); undefined when it names them all.
 */
export function describeRefusedOrigins(local: string[], allowedOrigins: string, fromDevVars: string[]): string | undefined {
  const allowed = allowedOrigins.split(',').map((o) => o.trim().replace(/\/+$/, ''))
  const refused = local.filter((o) => !allowed.includes(o))
  if (refused.length === 0) return undefined
  const source = fromDevVars.includes('ALLOWED_ORIGINS') ? '.dev.vars' : 'sandbox/dev.env'
  return [
    `  ✗ ALLOWED_ORIGINS (${source}) does not name ${refused.join(' or ')}:`,
    '    the Worker answers origin_not_allowed to the demo page there. Add it, or delete the line from .dev.vars.',
  ].join('\n')
}

/**
 * wrangler.toml with every `simple = { limit = N, period = P }` raised to 10,000, written into the run's
 * folder; `main` and the assets folder made absolute, since the copy's relative paths would point
 * into the run's folder.
 */
function configWithRaisedLimits(runDir: string): string {
  const path = join(runDir, 'wrangler.toml')
  const toml = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8')
    .replace(/^main = "([^"]+)"/m, (_, main: string) => `main = ${JSON.stringify(join(ROOT, main))}`)
    .replace(/^directory = "([^"]+)"/m, (_, directory: string) => `directory = ${JSON.stringify(join(ROOT, directory))}`)
    .replace(/simple = \{ limit = \d+,/g, 'simple = { limit = 10000,')
  writeFileSync(path, toml)
  return path
}

/** One look at the health URL: this run's Worker, another program, or nothing ready yet. */
export type WorkerCheck = { kind: 'ours'; health: WorkerHealth } | { kind: 'foreign'; answer: string } | { kind: 'not_ready'; answer?: string }

const isHealth = (body: unknown): body is WorkerHealth => {
  const b = body as Partial<WorkerHealth> | null
  return !!b && typeof b.ok === 'boolean' && [b.missing, b.malformed, b.problems].every(Array.isArray)
}

/**
 * Asks `url` (the Worker's health) with `nonce` as the client's request id. This Worker answers with
 * an id of its own in `X-Request-Id`, gives a well-formed client id back as `X-Client-Request-Id`,
 * and answers health's shape, so an answer with the nonce there and that shape is ours and nothing
 * else is. Any other answer below 500 is another program; a 5xx of that kind is wrangler
 * still loading the Worker, so it is worth another look.
 */
export async function checkWorker(url: string, nonce: string, timeoutMs = 2000): Promise<WorkerCheck> {
  let res: Response
  try {
    res = await fetch(url, { headers: { 'x-request-id': nonce }, signal: AbortSignal.timeout(timeoutMs) })
  } catch {
    return { kind: 'not_ready' }
  }
  const body: unknown = await res.json().catch(() => undefined)
  if (res.headers.get('x-client-request-id') === nonce && isHealth(body)) return { kind: 'ours', health: body }
  const server = res.headers.get('server')
  // Another program's words on this terminal: shortened and stripped of control characters.
  const answer = `HTTP ${res.status}${server ? ` from server "${printable(server, 60)}"` : ''}`
  return res.status >= 500 ? { kind: 'not_ready', answer } : { kind: 'foreign', answer }
}

async function portTakenMeanwhile(role: PortRole, port: number, detail: string): Promise<StackError> {
  const holder = await holderOf(port)
  const { what, flag, env } = PORT_CHOICE[role]
  return new StackError(
    [
      `Port ${port} (${what}) ${detail}${holder ? `; it is held by ${holder}` : ''}.`,
      'Stop that program, or pick another port:',
      `  npm run dev -- ${flag} N`,
      `  ${env}=N npm run dev`,
    ].join('\n'),
  )
}

async function waitForWorker(port: number, gone: () => string | undefined, output: () => string, timeoutMs: number): Promise<WorkerHealth> {
  const url = `http://127.0.0.1:${port}/api/tiktok/health`
  const nonce = `dev-${randomBytes(12).toString('hex')}`
  const deadline = Date.now() + timeoutMs
  let last: string | undefined
  while (Date.now() < deadline) {
    const why = gone()
    if (why) {
      if (/Address already in use/i.test(output())) throw await portTakenMeanwhile('worker', port, 'was taken while wrangler dev started')
      throw new StackError(`wrangler dev ${why} before the Worker answered. What it printed:\n${output()}`)
    }
    const check = await checkWorker(url, nonce)
    if (check.kind === 'ours') return check.health
    if (check.kind === 'foreign') throw await portTakenMeanwhile('worker', port, `answers ${check.answer}, not as this Worker`)
    last = check.answer ?? last
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new StackError(
    `wrangler dev did not answer ${url} as this Worker within ${timeoutMs} ms${last ? ` (last answer: ${last})` : ''}. What it printed:\n${output()}`,
  )
}

/** wrangler's lines that only repeat what the banner says better: where it read the settings from. */
const NOISE = [/Using secrets defined in /]
const BINDINGS_HEADING = /Your Worker has access to the following bindings/

/**
 * Passes the child's output on by whole lines, without the noise. wrangler prints its bindings table
 * at every (re)start of the Worker: a table the same as the last one shown is held back.
 */
export function lineFilter(write: (text: string) => void): { push: (chunk: string) => void; flush: () => void } {
  let pending = ''
  let table: string[] | undefined
  let shownTable = ''
  const endTable = () => {
    const text = table!.join('')
    if (text !== shownTable) write(text)
    shownTable = text
    table = undefined
  }
  const emit = (line: string) => {
    if (NOISE.some((n) => n.test(line))) return
    if (BINDINGS_HEADING.test(line)) table = []
    if (!table) return write(line)
    table.push(line)
    if (line.trim() === '') endTable()
  }
  return {
    push(chunk) {
      const lines = (pending + chunk).split(/(?<=\n)/)
      pending = lines.at(-1)!.endsWith('\n') ? '' : lines.pop()!
      for (const line of lines) emit(line)
    },
    flush() {
      if (pending) emit(pending)
      pending = ''
      if (table) endTable()
    },
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * Removes the run folders (settings file included) of runs that died without cleaning up (SIGKILL,
 * a crash of Node itself): each folder names its run's pid, and only ours whose pid is gone go.
 */
export function removeAbandonedRuns(root: string): void {
  for (const name of readdirSync(root)) {
    if (!name.startsWith(RUN_DIR_PREFIX)) continue
    const dir = join(root, name)
    try {
      // A real folder of ours: not another user's, and not a link someone planted to one of ours.
      const stat = lstatSync(dir)
      if (!stat.isDirectory() || stat.uid !== process.getuid?.()) continue
      const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'))
      if (Number.isInteger(pid) && pid > 0 && !alive(pid)) rmSync(dir, { recursive: true, force: true })
    } catch {
      // No pid file (an older run, or one being created): not ours to judge.
    }
  }
}

export type StackOptions = {
  workerPort?: number
  sandboxPort?: number
  /** wrangler's debugger; default the Worker's port + 10000. */
  inspectorPort?: number
  useDevVars?: boolean
  /** Settings over the layered ones, for a test that needs another (e.g. ALLOWED_ORIGINS on other hosts). */
  vars?: Record<string, string>
  /**
   * Tests: the [[ratelimits]] of wrangler.toml raised, as the workerd suite raises them, so a test
   * file may sign in and connect as one user as often as it needs; the tests of throttling keep them.
   */
  raisedLimits?: boolean
  /** Print nothing of wrangler's output (tests). */
  quiet?: boolean
  /** Print all of wrangler's output, noise included. */
  verbose?: boolean
  /** Where the run folder goes (default the system's temp folder). */
  tmpRoot?: string
  /** How long wrangler may take to answer as this Worker (default 90 s). */
  readyTimeoutMs?: number
}

/**
 * Starts the sandbox in this process and the Worker under `wrangler dev`, pointed at it. Checks the
 * ports first and starts nothing if one is taken; resolves only once this run's Worker answers.
 */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const workerPort = options.workerPort ?? DEFAULT_WORKER_PORT
  const sandboxPort = options.sandboxPort ?? DEFAULT_SANDBOX_PORT
  const inspectorPort = options.inspectorPort ?? defaultInspectorPort(workerPort)
  const ports = { worker: workerPort, sandbox: sandboxPort, inspector: inspectorPort }
  for (const [role, port] of Object.entries(ports) as [PortRole, number][]) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new StackError(`${PORT_CHOICE[role].flag} must be a port number from 1 to 65535.`)
  }
  if (new Set(Object.values(ports)).size < 3)
    throw new StackError(`The Worker, the sandbox and the inspector need three different ports (given ${workerPort}, ${sandboxPort}, ${inspectorPort}).`)
  const taken = await portsInUse(ports)
  if (taken.length > 0) throw new StackError(describePortsInUse(taken))

  const vars = { ...localConfig(workerPort, sandboxPort, options.useDevVars ?? true), ...options.vars }
  const sandboxOrigin = `http://127.0.0.1:${sandboxPort}`

  // wrangler reads the layered values from one file; it lives outside the repo and dies with the run.
  // So does the Worker's local state (the rate limiters' counters): the sandbox starts empty each
  // run, and a run must not inherit the counts of another run in the same minute.
  const tmpRoot = options.tmpRoot ?? tmpdir()
  removeAbandonedRuns(tmpRoot)
  const runDir = mkdtempSync(join(tmpRoot, RUN_DIR_PREFIX))
  const settingsFile = join(runDir, 'local.env')
  writeFileSync(join(runDir, 'pid'), String(process.pid))
  writeFileSync(
    settingsFile,
    `${Object.entries(vars)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  )

  let child: ChildProcess | undefined
  let assets: DevAssets | undefined
  let gone: string | undefined
  // The last word on every exit path, process.exit and uncaught errors included: no settings file
  // (which holds .dev.vars' real secrets) and no wrangler left behind. Synchronous, as 'exit' must be.
  const onExit = () => {
    assets?.close()
    rmSync(runDir, { recursive: true, force: true })
    if (child && !gone) child.kill('SIGTERM')
  }
  process.once('exit', onExit)

  let log = ''
  const out = lineFilter((line) => process.stdout.write(line))
  let exited!: Promise<number | null>
  try {
    // The pages' folder of this run: public/, local/ and /__dev/ (scripts/dev-assets.ts).
    assets = devAssets(ROOT, join(runDir, 'assets'), {
      sandbox: sandboxOrigin,
      supabase_url: (vars.SUPABASE_URL ?? '').replace(/\/+$/, ''),
      demo_user: { email: DEMO_USER.email, password: DEMO_USER.password },
    })
    child = spawn(
      join(ROOT, 'node_modules/.bin/wrangler'),
      [
        'dev',
        '--port',
        String(workerPort),
        '--ip',
        '127.0.0.1',
        '--env-file',
        settingsFile,
        '--assets',
        assets.dir,
        '--show-interactive-dev-session=false',
        '--inspector-port',
        String(inspectorPort),
        '--persist-to',
        join(runDir, 'state'),
        ...(options.raisedLimits ? ['--config', configWithRaisedLimits(runDir)] : []),
      ],
      {
        cwd: ROOT,
        env: {
          ...process.env,
          WRANGLER_SEND_METRICS: 'false',
          CI: 'true',
          // The Worker never reads request.cf; offline, fetching it prints two stack traces per start.
          CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? 'false',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    const running = child
    exited = new Promise((resolve) => {
      const ended = (code: number | null) => {
        out.flush()
        // Nothing reads the settings once wrangler is gone, whoever stopped it.
        rmSync(settingsFile, { force: true })
        resolve(code)
      }
      running.once('exit', (code, signal) => {
        gone = `exited (${code ?? signal})`
        ended(code)
      })
      running.once('error', (error) => {
        gone = `could not start (${error.message})`
        ended(null)
      })
    })
    const collect = (chunk: Buffer) => {
      log += chunk.toString()
      if (options.quiet) return
      if (options.verbose) process.stdout.write(chunk)
      else out.push(chunk.toString())
    }
    child.stdout!.on('data', collect)
    child.stderr!.on('data', collect)
  } catch (error) {
    onExit()
    process.removeListener('exit', onExit)
    throw error
  }
  const wrangler = child

  let database: SandboxDatabase | undefined
  let server: Server | undefined
  let stopping: Promise<void> | undefined
  const stop = () =>
    (stopping ??= (async () => {
      rmSync(settingsFile, { force: true })
      if (!gone) {
        wrangler.kill('SIGTERM')
        const killer = setTimeout(() => wrangler.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(killer)
      }
      if (server) {
        // Idle keep-alive connections would hold close() open for the server's 65 s keep-alive.
        const closed = new Promise((r) => server!.close(r))
        server.closeAllConnections()
        await closed
      }
      await database?.close()
      assets?.close()
      rmSync(runDir, { recursive: true, force: true })
      process.removeListener('exit', onExit)
    })())

  try {
    // The sandbox's database loads while wrangler starts: the Worker asks nothing of it before a request.
    database = await openDatabase()
    const sandbox = await createSandbox({
      origin: sandboxOrigin,
      workerOrigins: (vars.ALLOWED_ORIGINS ?? '').split(',').map((o) => o.trim()),
      appId: vars.TIKTOK_APP_ID!,
      appSecret: vars.TIKTOK_APP_SECRET!,
      supabaseSecretKey: vars.SUPABASE_SECRET_KEY!,
      webhookSecret: vars.WEBHOOK_SECRET,
      database,
      tiktokTier: sandboxTier(vars),
    })
    try {
      server = await serve(sandbox.app.fetch, sandboxPort)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') throw await portTakenMeanwhile('sandbox', sandboxPort, 'was taken while the sandbox started')
      throw error
    }
    const health = await waitForWorker(
      workerPort,
      () => gone,
      () => log,
      options.readyTimeoutMs ?? 90_000,
    )
    return { workerOrigin: `http://localhost:${workerPort}`, sandboxOrigin, sandbox, vars, health, settingsFile, exited, output: () => log, stop }
  } catch (error) {
    await stop()
    throw error
  }
}
