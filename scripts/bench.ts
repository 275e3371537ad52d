// `npm run bench`: bundle size, start-up CPU against a bare Hono Worker, and full start → exchange
// flows on workerd against the sandbox, next to a floor Worker making the same upstream calls.
// Prints one table and writes it as JSON to .bench/. Not a test: nothing here asserts a number.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join, relative } from 'node:path'
import { gzipSync } from 'node:zlib'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import { localConfig, ROOT } from './stack.ts'

const OUT = join(ROOT, '.bench')
const WORKER_PORT = 8970
const SANDBOX_PORT = 8990
const WORKER_ORIGIN = `http://127.0.0.1:${WORKER_PORT}`
const SANDBOX = `http://127.0.0.1:${SANDBOX_PORT}`
const CONCURRENCY = [1, 16, 128]
const LATENCIES_MS = [0, 50]
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 5000)
const WARMUP_MS = 700
const STARTUP_SAMPLES = Number(process.env.BENCH_STARTUP_SAMPLES ?? 5)
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name)
const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' }
const log = (line: string) => process.stderr.write(`${line}\n`)

// ── 1. Bundle ────────────────────────────────────────────────────────────────────────────────
type Bundle = { raw: number; gzip: number; file: string; top: { name: string; bytes: number }[] }

function dryRun(name: string, config?: string): Bundle {
  const outdir = join(OUT, name)
  execFileSync(bin('wrangler'), ['deploy', '--dry-run', '--outdir', outdir, '--metafile', join(outdir, 'meta.json'), ...(config ? ['--config', config] : [])], {
    cwd: ROOT,
    env,
    stdio: 'pipe',
  })
  const file = join(outdir, 'index.js')
  const code = readFileSync(file)
  const meta = JSON.parse(readFileSync(join(outdir, 'meta.json'), 'utf8')) as {
    outputs: Record<string, { entryPoint?: string; inputs: Record<string, { bytesInOutput: number }> }>
  }
  const output = Object.values(meta.outputs).find((o) => o.entryPoint)!
  const byOwner = new Map<string, number>()
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(input)
    // Packages by their largest parts (e.g. hono/dist/hono-base), project files by path.
    const owner = pkg
      ? `${pkg[1]}/${pkg[2]!
          .split('/')
          .slice(0, pkg[2]!.startsWith('dist') ? 2 : 1)
          .join('/')}`
      : input.replace(/^.*?src\//, 'src/')
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + bytesInOutput)
  }
  const top = [...byOwner]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([n, bytes]) => ({ name: n, bytes }))
  return { raw: code.byteLength, gzip: gzipSync(code, { level: 9 }).byteLength, file, top }
}

// ── 2. Start-up ──────────────────────────────────────────────────────────────────────────────
function startupActiveMs(config?: string): number {
  const out = execFileSync(bin('wrangler'), ['check', 'startup', '--outfile', join(OUT, 'startup.cpuprofile'), ...(config ? ['--config', config] : [])], {
    cwd: ROOT,
    env,
    stdio: 'pipe',
  }).toString()
  const match = /Active:\s*([\d.]+)\s*ms/.exec(out)
  if (!match) throw new Error(`no "Active" line in wrangler check startup:\n${out}`)
  return Number(match[1])
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const percentile = (xs: number[], p: number) => {
  if (!xs.length) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!
}

// ── 3. Processes ─────────────────────────────────────────────────────────────────────────────
function waitForLine(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${seen}`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      if (pattern.test(seen)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}:\n${seen}`)))
  })
}

const capnpText = (value: string) => JSON.stringify(value)

// Workers Rate Limiting bindings the Worker requires (wrangler.toml [[ratelimits]]; src/env.ts refuses
// to run without them). `workerd serve` has no rate limiter of its own, so each is a `wrapped`
// binding over an internal extension module that allows every call: the benchmark measures flows,
// not throttling, and its load generator sends every flow as one user from one address.
const RATE_LIMITS = ['USER_RATE_LIMIT', 'CLIENT_RATE_LIMIT']
const ALLOW_ALL_MODULE = 'bench:ratelimit'
const ALLOW_ALL_FILE = join(ROOT, 'bench/allow-all-ratelimit.js')
// The Worker's own pinned date, so workerd runs the bundle as wrangler would.
const COMPATIBILITY_DATE = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(join(ROOT, 'wrangler.toml'), 'utf8'))![1]!

/** A workerd config that embeds the dry-run bundle and lets it reach the sandbox on loopback. */
function workerdConfig(bundle: Bundle, bindings: Record<string, string>, options: { quota?: boolean } = {}): string {
  const path = join(OUT, `${relative(OUT, bundle.file).split('/')[0]}.capnp`)
  const list = [
    ...Object.entries(bindings).map(([k, v]) => `(name = ${capnpText(k)}, text = ${capnpText(v)})`),
    ...RATE_LIMITS.map((name) => `(name = ${capnpText(name)}, wrapped = (moduleName = ${capnpText(ALLOW_ALL_MODULE)}, innerBindings = []))`),
    // The Worker's quota governor, a Durable Object of the bundle itself, as wrangler.toml declares it.
    ...(options.quota ? ['(name = "QUOTA", durableObjectNamespace = (className = "QuotaGovernor"))'] : []),
  ]
  const durableObjects = options.quota
    ? `durableObjectNamespaces = [(className = "QuotaGovernor", uniqueKey = "tiktok-connect-bench-quota", enableSql = true)],
      durableObjectStorage = (inMemory = void),`
    : ''
  writeFileSync(
    path,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = (
      modules = [(name = "index.js", esModule = embed ${capnpText(relative(OUT, bundle.file))})],
      compatibilityDate = ${capnpText(COMPATIBILITY_DATE)},
      bindings = [${list.join(', ')}],
      ${durableObjects}
      globalOutbound = "net",
    )),
    (name = "net", network = (allow = ["public", "local", "private"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${WORKER_PORT}", http = (), service = "main")],
  extensions = [(modules = [(name = ${capnpText(ALLOW_ALL_MODULE)}, esModule = embed ${capnpText(relative(OUT, ALLOW_ALL_FILE))}, internal = true)])],
);
`,
  )
  return path
}

async function startWorkerd(config: string): Promise<ChildProcess> {
  // The Worker's log lines go to /dev/null, still written: their cost is part of the measurement.
  // (A pipe nobody reads would fill up and stall workerd.)
  const child = spawn(bin('workerd'), ['serve', config], { cwd: OUT, stdio: ['ignore', 'ignore', 'ignore'] })
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`workerd exited with ${child.exitCode}`)
    try {
      await fetch(`${WORKER_ORIGIN}/`, { signal: AbortSignal.timeout(1000) })
      return child
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  throw new Error('workerd did not start listening')
}

/** CPU time (user + system) a process has used so far, in ms; stable where wall-clock rates are not. */
const cpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100
}

const peakRssKiB = (pid: number) => Number(/VmHWM:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)

// ── 4. Load ──────────────────────────────────────────────────────────────────────────────────
type Reply = { status: number; body: string; cookie: string | undefined }

function request(agent: http.Agent, method: string, path: string, headers: Record<string, string>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: WORKER_PORT, method, path, agent, headers: { host: `127.0.0.1:${WORKER_PORT}`, ...headers } },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (text += d))
        // Every Set-Cookie's name=value, as a browser sends them back (the Worker's is
        // __Host-tiktok_oauth_binding; its Secure attribute means nothing to this client).
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: text, cookie: res.headers['set-cookie']?.map((c) => c.split(';')[0]!.trim()).join('; ') || undefined }),
        )
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

const admin = async (path: string, body: unknown) =>
  (await fetch(`${SANDBOX}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json()

type Run = { flows: number; flowsPerSec: number; p50: number; p99: number; cpuMsPerFlow?: number }

/**
 * `concurrency` users, each looping start → (TikTok authorize) → exchange until time is up. Every
 * flow must answer 200: the first that does not stops the run and fails the benchmark, since numbers
 * from failing flows would measure error paths.
 */
async function load(concurrency: number, durationMs: number, accessToken: string, what: string): Promise<Run> {
  const { codes } = (await admin('/__sandbox/codes', { count: Math.max(2000, concurrency * 400) })) as { codes: string[] }
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const latencies: number[] = []
  let failure: string | undefined
  const end = Date.now() + durationMs
  const user = async () => {
    while (!failure && Date.now() < end && codes.length) {
      const t0 = performance.now()
      const started = await request(agent, 'POST', '/api/tiktok/oauth/start', { authorization: `Bearer ${accessToken}`, origin: WORKER_ORIGIN })
      if (started.status !== 200) {
        failure ||= `start answered ${started.status}: ${started.body.slice(0, 300)}`
        break
      }
      const state = new URL((JSON.parse(started.body) as { authorize_url: string }).authorize_url).searchParams.get('state')
      const body = JSON.stringify({ auth_code: codes.pop(), state: state ?? 'x' })
      const done = await request(
        agent,
        'POST',
        '/api/tiktok/oauth/exchange',
        { 'content-type': 'application/json', origin: WORKER_ORIGIN, ...(started.cookie ? { cookie: started.cookie } : {}) },
        body,
      )
      if (done.status !== 200) {
        failure ||= `exchange answered ${done.status} (cookie sent: ${started.cookie?.split('=')[0] ?? 'none'}): ${done.body.slice(0, 300)}`
        break
      }
      latencies.push(performance.now() - t0)
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, user))
  const elapsed = (performance.now() - t0) / 1000
  agent.destroy()
  if (failure) throw new Error(`${what}: a flow failed after ${latencies.length} succeeded; ${failure}`)
  return { flows: latencies.length, flowsPerSec: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
}

/**
 * The proxy's cost: `concurrency` callers asking `advertiser/info/` for `durationMs`, through the
 * Worker (a service key, the demo user's connection) or straight at the sandbox's TikTok with a token
 * of their own. Every call must answer TikTok's code 0.
 */
async function proxyLoad(concurrency: number, durationMs: number, via: 'proxy' | 'direct', token: string): Promise<Run> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const query = `advertiser_ids=${encodeURIComponent(JSON.stringify([DEMO_ADVERTISERS[0]!.id]))}`
  const [, serviceKey] = vars.SERVICE_KEYS!.split(':')
  const latencies: number[] = []
  let failure: string | undefined
  const end = Date.now() + durationMs
  const caller = async () => {
    while (!failure && Date.now() < end) {
      const t0 = performance.now()
      const reply =
        via === 'proxy'
          ? await request(agent, 'GET', `/api/tiktok/proxy/open_api/v1.3/advertiser/info/?${query}`, {
              authorization: `Bearer ${serviceKey}`,
              'x-tiktok-connect-user': DEMO_USER.id,
            })
          : await new Promise<Reply>((resolve, reject) =>
              http
                .get(
                  { host: '127.0.0.1', port: SANDBOX_PORT, path: `/tiktok/open_api/v1.3/advertiser/info/?${query}`, agent, headers: { 'access-token': token } },
                  (res) => {
                    let text = ''
                    res.on('data', (d) => (text += d))
                    res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, cookie: undefined }))
                  },
                )
                .on('error', reject),
            )
      if (reply.status !== 200 || !/"code":\s*0\b/.test(reply.body)) {
        failure ||= `${via} answered ${reply.status}: ${reply.body.slice(0, 300)}`
        break
      }
      latencies.push(performance.now() - t0)
    }
  }
  const t0 = performance.now()
  await Promise.all(Array.from({ length: concurrency }, caller))
  const elapsed = (performance.now() - t0) / 1000
  agent.destroy()
  if (failure) throw new Error(`proxy benchmark (${via}): a call failed after ${latencies.length} succeeded; ${failure}`)
  return { flows: latencies.length, flowsPerSec: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
}

// ── Main ─────────────────────────────────────────────────────────────────────────────────────
const began = Date.now()
mkdirSync(OUT, { recursive: true })

log('bundling (wrangler deploy --dry-run) …')
const ours = dryRun('ours')
const floor = dryRun('floor', 'bench/floor/wrangler.toml')
const bare = dryRun('bare', 'bench/bare/wrangler.toml')
const inproc = dryRun('inproc', 'bench/inproc/wrangler.toml')
// sandbox/dev.env on the benchmark's ports, the same settings every run of the Worker here gets.
// The governor keeps its largest tier: the benchmark measures the Worker's cost, not TikTok's quota.
const vars: Record<string, string> = {
  ...localConfig(WORKER_PORT, SANDBOX_PORT, false),
  ALLOWED_ORIGINS: WORKER_ORIGIN,
  FLOOR_USER_ID: DEMO_USER.id,
  TIKTOK_QPS: '1000',
  TIKTOK_QPM: '60000',
}

log(`start-up (wrangler check startup ×${STARTUP_SAMPLES} each, alternating) …`)
const startup = { ours: [] as number[], bare: [] as number[] }
for (let i = 0; i < STARTUP_SAMPLES; i++) {
  startup.ours.push(startupActiveMs())
  startup.bare.push(startupActiveMs('bench/bare/wrangler.toml'))
}

log('in-process flows (bench/inproc: canned upstream answers, no I/O) …')
const inProcess = { ours: [] as number[], floor: [] as number[] }
{
  const workerd = await startWorkerd(workerdConfig(inproc, vars))
  try {
    // 1,000 flows per request: every upstream call's timeout timer lives on for its full 8 s, and
    // one request may not hold unboundedly many of them.
    const FLOWS_PER_REQUEST = 1000
    const REQUESTS = 3
    for (const w of ['ours', 'floor', 'ours', 'floor', 'ours', 'floor'] as const) {
      await fetch(`${WORKER_ORIGIN}/?w=${w}&n=200`)
      const before = cpuMs(workerd.pid!)
      for (let r = 0; r < REQUESTS; r++) {
        const res = await fetch(`${WORKER_ORIGIN}/?w=${w}&n=${FLOWS_PER_REQUEST}`)
        if (!res.ok) throw new Error(`in-process ${w} flow failed: ${await res.text()}`)
      }
      inProcess[w].push(((cpuMs(workerd.pid!) - before) * 1000) / (FLOWS_PER_REQUEST * REQUESTS))
    }
  } finally {
    workerd.kill('SIGTERM')
  }
}

log('sandbox …')
const sandbox = spawn(
  process.execPath,
  [join(ROOT, 'scripts/sandbox.ts'), '--port', String(SANDBOX_PORT), '--worker-origin', WORKER_ORIGIN, '--quiet', '--no-tier'],
  {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  },
)
// The first run builds the migrated database template (several seconds), later runs load it.
await waitForLine(sandbox, /ready/, 'sandbox', 120_000)

const signIn = (await (
  await fetch(`${SANDBOX}/supabase/auth/v1/token?grant_type=password`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: DEMO_USER.email, password: DEMO_USER.password }),
  })
).json()) as { access_token: string }

type Row = { target: 'ours' | 'floor'; latencyMs: number; concurrency: number } & Run
const rows: Row[] = []
const PROXY_CONCURRENCY = 16
const proxyRows: Record<'proxy' | 'direct', Run> = {} as Record<'proxy' | 'direct', Run>
const memory: Record<string, number> = {}
try {
  for (const [target, bundle] of [
    ['ours', ours],
    ['floor', floor],
  ] as const) {
    const workerd = await startWorkerd(workerdConfig(bundle, vars, { quota: target === 'ours' }))
    try {
      for (const latencyMs of LATENCIES_MS) {
        for (const concurrency of CONCURRENCY) {
          // A reset also clears the latency, so it is set again after it.
          await admin('/__sandbox/reset', {})
          await admin('/__sandbox/faults', { defaultLatencyMs: latencyMs })
          const cell = `${target}, latency ${latencyMs} ms, c=${concurrency}`
          await load(concurrency, WARMUP_MS, signIn.access_token, `${cell} (warm-up)`)
          const cpuBefore = cpuMs(workerd.pid!)
          const run = await load(concurrency, RUN_MS, signIn.access_token, cell)
          run.cpuMsPerFlow = (cpuMs(workerd.pid!) - cpuBefore) / Math.max(1, run.flows)
          rows.push({ target, latencyMs, concurrency, ...run })
          log(
            `  ${target.padEnd(5)} latency ${String(latencyMs).padStart(2)} ms  c=${String(concurrency).padStart(3)}  ${run.flowsPerSec.toFixed(0).padStart(5)} flows/s  p50 ${run.p50.toFixed(1)} ms  p99 ${run.p99.toFixed(1)} ms  workerd CPU ${run.cpuMsPerFlow.toFixed(2)} ms/flow`,
          )
        }
      }
      if (target === 'ours') {
        log('proxied calls (advertiser/info/ through the Worker, and straight at the sandbox) …')
        await admin('/__sandbox/reset', {})
        // One connection for the demo user (the proxy's), and a token of the load generator's own.
        await load(1, 300, signIn.access_token, 'proxy set-up')
        const [code] = ((await admin('/__sandbox/codes', { count: 1 })) as { codes: string[] }).codes
        const granted = (await (
          await fetch(`${SANDBOX}/tiktok/open_api/v1.3/oauth2/access_token/`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ app_id: vars.TIKTOK_APP_ID, secret: vars.TIKTOK_APP_SECRET, auth_code: code }),
          })
        ).json()) as { data: { access_token: string } }
        for (const via of ['direct', 'proxy'] as const) {
          await proxyLoad(PROXY_CONCURRENCY, WARMUP_MS, via, granted.data.access_token)
          const cpuBefore = cpuMs(workerd.pid!)
          const run = await proxyLoad(PROXY_CONCURRENCY, RUN_MS, via, granted.data.access_token)
          run.cpuMsPerFlow = (cpuMs(workerd.pid!) - cpuBefore) / Math.max(1, run.flows)
          proxyRows[via] = run
          log(
            `  ${via.padEnd(6)} c=${PROXY_CONCURRENCY}  ${run.flowsPerSec.toFixed(0).padStart(5)} calls/s  p50 ${run.p50.toFixed(1)} ms  p99 ${run.p99.toFixed(1)} ms  workerd CPU ${run.cpuMsPerFlow.toFixed(2)} ms/call`,
          )
        }
      }
      memory[target] = peakRssKiB(workerd.pid!)
    } finally {
      workerd.kill('SIGTERM')
    }
  }
} finally {
  sandbox.kill('SIGTERM')
}

// ── Report ───────────────────────────────────────────────────────────────────────────────────
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`
const startupOurs = median(startup.ours)
const startupBare = median(startup.bare)
const table: string[] = []
table.push(`Bundle (wrangler deploy --dry-run): ${kib(ours.raw)} raw, ${kib(ours.gzip)} gzip   [floor ${kib(floor.gzip)}, bare Hono ${kib(bare.gzip)} gzip]`)
table.push(`  largest contributors: ${ours.top.map((t) => `${t.name} ${kib(t.bytes)}`).join(', ')}`)
table.push(
  `Start-up (wrangler check startup, active CPU, median of ${STARTUP_SAMPLES}): ours ${startupOurs.toFixed(1)} ms, bare Hono ${startupBare.toFixed(1)} ms, ratio ${(startupOurs / startupBare).toFixed(2)}×`,
)
const inOurs = median(inProcess.ours)
const inFloor = median(inProcess.floor)
table.push(
  `Worker CPU per flow without I/O (bench/inproc, median of 3): ours ${inOurs.toFixed(0)} µs, floor ${inFloor.toFixed(0)} µs, ratio ${(inOurs / inFloor).toFixed(2)}×`,
)
table.push(`Round trip on workerd serve (one flow = start + exchange; ${RUN_MS / 1000} s per cell; ratios = ours / floor; latencies in ms;`)
table.push('  added = ours − floor; CPU/flow = workerd user+system CPU ms per completed flow):')
table.push(
  '  upstream | conc |  ours f/s | floor f/s | thr ratio | ours p50 | floor p50 | ours p99 | floor p99 | added p50 | added p99 | CPU/flow ours | floor | ratio',
)
const cells: Record<string, unknown>[] = []
for (const latencyMs of LATENCIES_MS)
  for (const concurrency of CONCURRENCY) {
    const o = rows.find((r) => r.target === 'ours' && r.latencyMs === latencyMs && r.concurrency === concurrency)!
    const f = rows.find((r) => r.target === 'floor' && r.latencyMs === latencyMs && r.concurrency === concurrency)!
    const cell = {
      latencyMs,
      concurrency,
      ours: o,
      floor: f,
      throughputRatio: o.flowsPerSec / f.flowsPerSec,
      latencyRatioP50: o.p50 / f.p50,
      latencyRatioP99: o.p99 / f.p99,
      addedP50: o.p50 - f.p50,
      addedP99: o.p99 - f.p99,
      cpuRatio: o.cpuMsPerFlow! / f.cpuMsPerFlow!,
    }
    cells.push(cell)
    table.push(
      `  ${`${latencyMs} ms`.padStart(8)} | ${String(concurrency).padStart(4)} | ${o.flowsPerSec.toFixed(0).padStart(9)} | ${f.flowsPerSec.toFixed(0).padStart(9)} | ${cell.throughputRatio.toFixed(2).padStart(9)} | ${o.p50.toFixed(1).padStart(8)} | ${f.p50.toFixed(1).padStart(9)} | ${o.p99.toFixed(1).padStart(8)} | ${f.p99.toFixed(1).padStart(9)} | ${cell.addedP50.toFixed(1).padStart(9)} | ${cell.addedP99.toFixed(1).padStart(9)} | ${o.cpuMsPerFlow!.toFixed(2).padStart(13)} | ${f.cpuMsPerFlow!.toFixed(2).padStart(5)} | ${cell.cpuRatio.toFixed(2).padStart(5)}`,
    )
  }
table.push(
  `  every flow answered 200 (warm-ups included); measured flows: ours ${rows.filter((r) => r.target === 'ours').reduce((n, r) => n + r.flows, 0)}, floor ${rows.filter((r) => r.target === 'floor').reduce((n, r) => n + r.flows, 0)}`,
)
{
  const { proxy: p, direct: d } = proxyRows
  table.push(
    `Proxy (advertiser/info/, c=${PROXY_CONCURRENCY}, ${RUN_MS / 1000} s each; one database read per call): through the Worker ${p.flowsPerSec.toFixed(0)} calls/s, p50 ${p.p50.toFixed(1)} ms, p99 ${p.p99.toFixed(1)} ms; straight at the sandbox ${d.flowsPerSec.toFixed(0)} calls/s, p50 ${d.p50.toFixed(1)} ms, p99 ${d.p99.toFixed(1)} ms; added p50 ${(p.p50 - d.p50).toFixed(1)} ms, p99 ${(p.p99 - d.p99).toFixed(1)} ms; workerd CPU ${(p.cpuMsPerFlow! * 1000).toFixed(0)} µs per proxied call`,
  )
}
const mib = (kibibytes: number) => `${(kibibytes / 1024).toFixed(0)} MiB`
table.push(`Peak memory of workerd (VmHWM): ours ${mib(memory.ours!)}, floor ${mib(memory.floor!)}`)
table.push(`Took ${((Date.now() - began) / 1000).toFixed(0)} s.`)

console.log(table.join('\n'))
const result = {
  date: new Date().toISOString(),
  bundle: { ours, floor: { raw: floor.raw, gzip: floor.gzip }, bare: { raw: bare.raw, gzip: bare.gzip } },
  startup: { ...startup, medianOurs: startupOurs, medianBare: startupBare, ratio: startupOurs / startupBare },
  inProcessMicrosPerFlow: { ...inProcess, medianOurs: inOurs, medianFloor: inFloor, ratio: inOurs / inFloor },
  roundTrip: cells,
  proxy: proxyRows,
  peakMemoryKiB: memory,
  table,
}
writeFileSync(join(OUT, 'latest.json'), JSON.stringify(result, null, 2))
writeFileSync(join(OUT, `bench-${result.date.replace(/[:.]/g, '-')}.json`), JSON.stringify(result, null, 2))
log(`written to ${relative(ROOT, join(OUT, 'latest.json'))}`)
