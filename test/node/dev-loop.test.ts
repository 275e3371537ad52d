import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runDev } from '../../e2e/dev-run.ts'
import { describePortsInUse, portsInUse } from '../../scripts/ports.ts'
import { SCHEMA } from '../../src/schema.ts'
import { checkWorker, describeProblems, describeRefusedOrigins, lineFilter, removeAbandonedRuns, StackError, startStack } from '../../scripts/stack.ts'

/** A port nobody holds right now, chosen by the system: never the defaults a person's `npm run dev` uses. */
async function freePort(): Promise<number> {
  const server = createTcpServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

/** Nobody listens on `port` at 127.0.0.1. */
async function isFree(port: number): Promise<boolean> {
  const server = createTcpServer()
  return new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** This process's children, from /proc (no procps needed: slim images lack `ps`). */
function childrenOf(parent: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        // `pid (comm) state ppid …`: comm may hold spaces, so read after its closing parenthesis.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent
      } catch {
        return false
      }
    })
    .map(Number)
}
const commandOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return ''
  }
}

const servers: Server[] = []
/** Another program on `port`: answers every request with `handler`. */
async function squat(port: number, handler: Parameters<typeof createServer>[1] = (_, res) => res.writeHead(404).end('not here'), host = '127.0.0.1') {
  const server = createServer(handler)
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve))
  servers.push(server)
  return server
}

let tmpRoot: string
const runDirs = () => readdirSync(tmpRoot).filter((name) => name.startsWith('tiktok-connect-'))

beforeEach(() => {
  tmpRoot = mkdtempSync(join(tmpdir(), 'dev-loop-test-'))
})
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))))
  rmSync(tmpRoot, { recursive: true, force: true })
})

describe('pre-flight port check', () => {
  it('names a taken port, who holds it, and a free one to pick with the flag or the variable', async () => {
    const [worker, sandbox, inspector] = [await freePort(), await freePort(), await freePort()]
    await squat(sandbox)
    const taken = await portsInUse({ worker, sandbox, inspector })
    expect(taken).toMatchObject([{ role: 'sandbox', port: sandbox, address: '127.0.0.1' }])
    const [use] = taken
    // Linux's /proc names this very process, without ss or lsof installed.
    expect(use!.holder).toContain(`pid ${process.pid}`)
    expect(use!.suggestion).toBeGreaterThan(sandbox)
    expect([worker, inspector]).not.toContain(use!.suggestion)

    const message = describePortsInUse(taken)
    expect(message).toContain(`Port ${sandbox} (the sandbox) is already in use on 127.0.0.1`)
    expect(message).toContain(`npm run dev -- --sandbox-port ${use!.suggestion}`)
    expect(message).toContain(`SANDBOX_PORT=${use!.suggestion} npm run dev`)
  })

  it("guards the Worker's port on [::1] too: the banner's localhost may resolve there", async (ctx) => {
    const port = await freePort()
    try {
      await squat(port, undefined, '::1')
    } catch {
      ctx.skip() // no IPv6 loopback on this machine
    }
    expect(await portsInUse({ worker: port, sandbox: await freePort(), inspector: await freePort() })).toMatchObject([{ role: 'worker', port, address: '::1' }])
  })

  it('startStack starts nothing and writes no settings file when a port is taken', async () => {
    const [worker, sandbox, inspector] = [await freePort(), await freePort(), await freePort()]
    await squat(worker)
    const error = await startStack({ workerPort: worker, sandboxPort: sandbox, inspectorPort: inspector, useDevVars: false, quiet: true, tmpRoot }).catch(
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(StackError)
    expect((error as Error).message).toContain(`Port ${worker} (the Worker) is already in use`)
    expect((error as Error).message).toMatch(/npm run dev -- --port \d+/)
    expect(runDirs()).toEqual([])
    expect([await isFree(sandbox), await isFree(inspector)]).toEqual([true, true])
  })
})

describe('identity check: only this run of this Worker counts as ready', () => {
  const NONCE = 'dev-0123456789abcdef'
  const health = { ok: true, missing: [], malformed: [], problems: [], schema: 'ok', schema_file: SCHEMA.file }

  it("refuses another program's answer, even one that looks like health", async () => {
    const port = await freePort()
    await squat(port) // 404, as the other program in the issue answered
    expect(await checkWorker(`http://127.0.0.1:${port}/api/tiktok/health`, NONCE)).toEqual({ kind: 'foreign', answer: 'HTTP 404' })

    // Its words reach the terminal without escape sequences.
    // Raw bytes (Node's own HTTP server would refuse them): 0x9b is the one-byte CSI of an escape sequence.
    const loud = createTcpServer((socket) =>
      socket.end(Buffer.from('HTTP/1.1 404 Not Found\r\nServer: evil\u009b2J\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 'latin1')),
    )
    await new Promise<void>((r) => loud.listen(0, '127.0.0.1', r))
    const seen = await checkWorker(`http://127.0.0.1:${(loud.address() as { port: number }).port}/api/tiktok/health`, NONCE)
    loud.close()
    expect(seen).toEqual({ kind: 'foreign', answer: 'HTTP 404 from server "evil?2J"' })

    const lookalike = await freePort()
    await squat(lookalike, (_, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(health)))
    expect(await checkWorker(`http://127.0.0.1:${lookalike}/api/tiktok/health`, NONCE)).toMatchObject({ kind: 'foreign' })
  })

  it('accepts the answer that gives this run’s request id back as X-Client-Request-Id with the health shape; waits through 5xx and silence', async () => {
    // An echo in X-Request-Id is no longer this Worker's way: the id there is always its own.
    const echoing = await freePort()
    await squat(echoing, (req, res) =>
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': req.headers['x-request-id'] as string }).end(JSON.stringify(health)),
    )
    expect(await checkWorker(`http://127.0.0.1:${echoing}/api/tiktok/health`, NONCE)).toMatchObject({ kind: 'foreign' })

    const port = await freePort()
    await squat(port, (req, res) =>
      res
        .writeHead(503, { 'content-type': 'application/json', 'x-request-id': 'its-own-id', 'x-client-request-id': req.headers['x-request-id'] as string })
        .end(JSON.stringify({ ...health, ok: false, missing: ['STATE_SECRET'] })),
    )
    expect(await checkWorker(`http://127.0.0.1:${port}/api/tiktok/health`, NONCE)).toEqual({
      kind: 'ours',
      health: { ...health, ok: false, missing: ['STATE_SECRET'] },
    })

    const starting = await freePort()
    await squat(starting, (_, res) => res.writeHead(503).end('starting'))
    expect(await checkWorker(`http://127.0.0.1:${starting}/api/tiktok/health`, NONCE)).toEqual({ kind: 'not_ready', answer: 'HTTP 503' })
    expect(await checkWorker(`http://127.0.0.1:${await freePort()}/api/tiktok/health`, NONCE)).toEqual({ kind: 'not_ready' })
  })
})

describe('settings problems, as npm run dev prints them', () => {
  it('names each setting, where it came from and what it must be; the fix points at .dev.vars', () => {
    const text = describeProblems(
      {
        ok: false,
        missing: ['TIKTOK_APP_SECRET', 'USER_RATE_LIMIT'],
        malformed: ['STATE_SECRET'],
        problems: [
          { name: 'TIKTOK_APP_SECRET', problem: 'missing', reason: 'not set' },
          { name: 'STATE_SECRET', problem: 'malformed', reason: 'must be at least 32 bytes (make one: openssl rand -base64 48)' },
          { name: 'USER_RATE_LIMIT', problem: 'missing', reason: 'the [[ratelimits]] binding declared in wrangler.toml' },
        ],
        schema: 'unknown',
        schema_file: SCHEMA.file,
      },
      ['TIKTOK_APP_SECRET', 'STATE_SECRET'],
    )
    expect(text).toContain('TIKTOK_APP_SECRET (.dev.vars): missing\n')
    expect(text).toContain('STATE_SECRET (.dev.vars): malformed — must be at least 32 bytes (make one: openssl rand -base64 48)')
    expect(text).toContain('USER_RATE_LIMIT (wrangler.toml): missing — the [[ratelimits]] binding')
    expect(text).toContain('Fix them in .dev.vars')
  })

  it('with the settings fine, says what the database lacks and names the file to apply', () => {
    const settled = { ok: false, missing: [], malformed: [], problems: [], schema_file: SCHEMA.file }
    const missing = describeProblems({ ...settled, schema: 'missing' }, [])
    expect(missing).toContain(`database's schema is missing`)
    expect(missing).toContain(`until ${SCHEMA.file} is applied`)
    expect(missing).not.toContain('.dev.vars')
    expect(describeProblems({ ...settled, schema: 'outdated' }, [])).toContain(`database's schema is outdated`)
    expect(describeProblems({ ...settled, schema: 'unknown' }, [])).toContain('check SUPABASE_URL and SUPABASE_SECRET_KEY')
  })
})

describe('ALLOWED_ORIGINS that leaves out where the Worker listens', () => {
  it('names the refused local origins and where the setting came from; nothing when both are allowed', () => {
    const local = ['http://localhost:8801', 'http://127.0.0.1:8801']
    expect(describeRefusedOrigins(local, 'http://localhost:8801,http://127.0.0.1:8801/', [])).toBeUndefined()
    expect(describeRefusedOrigins(local, 'https://app.example.com', ['ALLOWED_ORIGINS'])).toBe(
      '  ✗ ALLOWED_ORIGINS (.dev.vars) does not name http://localhost:8801 or http://127.0.0.1:8801:\n' +
        '    the Worker answers origin_not_allowed to the demo page there. Add it, or delete the line from .dev.vars.',
    )
  })
})

describe("wrangler's output", () => {
  it('drops the settings file path and a bindings table identical to the one shown, keeps the rest', () => {
    let shown = ''
    const out = lineFilter((text) => (shown += text))
    const table = 'Your Worker has access to the following bindings:\nenv.A  Var  local\n\n'
    for (const chunk of [
      'Using secrets defined in ../../tmp/tiktok-connect-x/loc',
      'al.env\n',
      table,
      '⎔ Starting',
      ' local server...\n',
      table,
      '✘ [ERROR] Address already in use\n',
    ])
      out.push(chunk)
    out.flush()
    expect(shown).toBe(`${table}⎔ Starting local server...\n✘ [ERROR] Address already in use\n`)
  })
})

describe('the settings file is gone on every exit path', () => {
  it('start-up failure: wrangler exits on its own before the Worker answers', async () => {
    const [worker, sandbox, inspector] = [await freePort(), await freePort(), await freePort()]
    const starting = startStack({ workerPort: worker, sandboxPort: sandbox, inspectorPort: inspector, useDevVars: false, quiet: true, tmpRoot })
    // The run folder exists while wrangler starts; then wrangler dies, as if it crashed.
    let wrangler: number | undefined
    for (let i = 0; i < 100 && !wrangler; i++) {
      await new Promise((r) => setTimeout(r, 50))
      wrangler = childrenOf(process.pid).find((pid) => commandOf(pid).includes('wrangler\0dev\0--port'))
    }
    expect(wrangler, 'wrangler was spawned').toBeDefined()
    expect(runDirs()).toHaveLength(1)
    // SIGTERM, which wrangler's launcher passes on: a SIGKILL would orphan the wrangler behind it.
    process.kill(wrangler!, 'SIGTERM')
    const error = await starting.catch((e: unknown) => e)
    expect(error).toBeInstanceOf(StackError)
    expect((error as Error).message).toMatch(/^wrangler dev exited \(.+\) before the Worker answered/)
    expect(runDirs()).toEqual([])
    expect([await isFree(worker), await isFree(sandbox)]).toEqual([true, true])
  })

  it('a run killed outright (SIGKILL) leaves its folder: the next run removes it, and only when its pid is gone', () => {
    const dirs = { dead: '4194305', live: String(process.pid), foreign: undefined }
    for (const [name, pid] of Object.entries(dirs)) {
      mkdirSync(join(tmpRoot, `tiktok-connect-${name}`))
      // 4194305 is past the kernel's largest pid: no process has it.
      if (pid) writeFileSync(join(tmpRoot, `tiktok-connect-${name}`, 'pid'), pid)
    }
    writeFileSync(join(tmpRoot, 'tiktok-connect-dead', 'local.env'), 'STATE_SECRET=…\n')
    // A link planted to a folder of ours that looks abandoned: neither it nor its target is removed.
    const target = mkdtempSync(join(tmpRoot, 'elsewhere-'))
    writeFileSync(join(target, 'pid'), '4194305')
    symlinkSync(target, join(tmpRoot, 'tiktok-connect-link'))
    removeAbandonedRuns(tmpRoot)
    // A folder without a pid file is another version's run, or one being created: left alone.
    expect(runDirs().sort()).toEqual(['tiktok-connect-foreign', 'tiktok-connect-link', 'tiktok-connect-live'])
    expect(existsSync(join(target, 'pid'))).toBe(true)
  })
})

describe('npm run dev, as a person runs it', () => {
  const dev = (args: string[]) => runDev(args, { TMPDIR: tmpRoot })

  it('port taken by a program answering 404: exits 1 at once, naming the port, the holder and the flag', async () => {
    const [worker, sandbox] = [await freePort(), await freePort()]
    await squat(worker)
    const run = dev(['--port', String(worker), '--sandbox-port', String(sandbox), '--inspector-port', String(await freePort())])
    expect(await run.exited).toBe(1)
    const said = run.stderr()
    expect(said).toContain('npm run dev could not start.')
    expect(said).toContain(`Port ${worker} (the Worker) is already in use on 127.0.0.1`)
    expect(said).toMatch(/npm run dev -- --port \d+/)
    expect(said).toMatch(/PORT=\d+ npm run dev/)
    expect(said).not.toMatch(/^\s+at /m) // a sentence, not a stack trace
    expect(run.stdout()).not.toContain('is running')
    expect(runDirs()).toEqual([])
  })

  it('a bad flag: usage, exit 2', async () => {
    const run = dev(['--port', 'eighty'])
    expect(await run.exited).toBe(2)
    expect(run.stderr()).toContain('--port (or PORT) must be a port number from 1 to 65535.')
    expect(run.stderr()).toContain('Usage: npm run dev')
  })

  it('starts on the given ports, says so once its own Worker answers, and Ctrl+C leaves no settings file', async () => {
    const [worker, sandbox, inspector] = [await freePort(), await freePort(), await freePort()]
    const run = dev(['--port', String(worker), '--sandbox-port', String(sandbox), '--inspector-port', String(inspector)])
    await run.ready()
    expect(run.stdout(), run.stderr()).toContain(`Open http://localhost:${worker}/profile`)
    expect(run.stdout()).toContain(`Sandbox database: http://127.0.0.1:${sandbox}/supabase/`)
    // Every URL the banner gives follows the ports (e2e/dev-ports.test.ts runs the pages and the curl lines).
    expect(run.stdout()).toContain(`Your own page: put it in local/ and open http://localhost:${worker}/local/<name>`)
    expect(run.stdout()).toContain(`TOKEN=$(curl -s -X POST 'http://127.0.0.1:${sandbox}/supabase/auth/v1/token?grant_type=password'`)
    expect(run.stdout()).toContain(`curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:${worker}/api/tiktok/connection`)
    expect(run.stdout()).not.toMatch(/:(8787|8790)\b/)
    expect(run.stdout()).not.toContain('Using secrets defined in')
    expect(run.stdout()).not.toContain('Request.cf')
    expect(run.stdout()).not.toContain('✗')
    const [dir] = runDirs()
    expect(statSync(join(tmpRoot, dir!, 'local.env')).mode & 0o777).toBe(0o600)

    expect(await run.stop()).toBe(0)
    expect(runDirs()).toEqual([])
    expect(await portsInUse({ worker, sandbox, inspector })).toEqual([])
  })
})
