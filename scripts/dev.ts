// `npm run dev`: the Worker under wrangler dev plus the offline TikTok + Supabase sandbox.
import { parseArgs } from 'node:util'
import { DEMO_USER } from '../sandbox/app.ts'
import { PORT_CHOICE, type PortRole } from './ports.ts'
import {
  DEFAULT_SANDBOX_PORT,
  DEFAULT_WORKER_PORT,
  defaultInspectorPort,
  describeProblems,
  describeRefusedOrigins,
  devVars,
  type Stack,
  StackError,
  startStack,
  tokenCommand,
} from './stack.ts'

const USAGE = `Usage: npm run dev [-- --port N] [--sandbox-port N] [--inspector-port N] [--verbose]
  --port            the Worker (default ${DEFAULT_WORKER_PORT}, or PORT)
  --sandbox-port    the TikTok + Supabase sandbox (default ${DEFAULT_SANDBOX_PORT}, or SANDBOX_PORT)
  --inspector-port  wrangler's debugger (default the Worker's port + 10000, or INSPECTOR_PORT)
  --verbose         everything wrangler prints, unfiltered`

/** Says what went wrong in words and stops; no stack trace, which would only bury the sentence. */
function fail(message: string, code = 1): never {
  console.error(`\n${message}\n`)
  process.exit(code)
}

const parse = () =>
  parseArgs({
    options: {
      port: { type: 'string' },
      'sandbox-port': { type: 'string' },
      'inspector-port': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values
let args!: ReturnType<typeof parse>
try {
  args = parse()
} catch (error) {
  fail(`${(error as Error).message}\n\n${USAGE}`, 2)
}
if (args.help) {
  console.log(USAGE)
  process.exit(0)
}

/** A flag wins over its environment variable; either must be a whole port number. */
function port(role: PortRole, fallback: number): number {
  const { flag, env } = PORT_CHOICE[role]
  const given = args[flag.slice(2) as 'port'] ?? process.env[env]
  if (given === undefined || given === '') return fallback
  const value = Number(given)
  if (!/^\d+$/.test(given) || value < 1 || value > 65535) fail(`${flag} (or ${env}) must be a port number from 1 to 65535.\n\n${USAGE}`, 2)
  return value
}
const workerPort = port('worker', DEFAULT_WORKER_PORT)
const sandboxPort = port('sandbox', DEFAULT_SANDBOX_PORT)
const inspectorPort = port('inspector', defaultInspectorPort(workerPort))

let stack: Stack | undefined
let stopping = false
/** Every way out stops wrangler and the sandbox; the stack deletes the settings file on the way. */
const shutdown = (code: number) => {
  if (stopping) return
  stopping = true
  if (!stack) process.exit(code) // still starting: startStack's exit hook cleans up
  stack.stop().finally(() => process.exit(code))
}
process.on('SIGINT', () => shutdown(0))
process.on('SIGTERM', () => shutdown(0))
process.on('SIGHUP', () => shutdown(0))

try {
  stack = await startStack({ workerPort, sandboxPort, inspectorPort, verbose: args.verbose })
} catch (error) {
  if (stopping) process.exit(0)
  if (error instanceof StackError) fail(`npm run dev could not start.\n${error.message}`)
  throw error
}

// Where the Worker listens, whatever ALLOWED_ORIGINS says: .dev.vars may name production origins.
const [primary, secondary] = [stack.workerOrigin, stack.workerOrigin.replace('localhost', '127.0.0.1')]
const fromDevVars = Object.keys(devVars())
console.log(`
  tiktok-connect-edge is running against the offline sandbox.

  Open ${primary}/profile  and sign in as ${DEMO_USER.email} / ${DEMO_USER.password}
  (the second product domain: ${secondary}/profile)

  Your own page: put it in local/ and open ${primary}/local/<name> (start from local/example.html)
  A sandbox access token for curl (the demo user, valid one hour):
    ${tokenCommand(stack.vars.SUPABASE_URL ?? '')}
    curl -H "Authorization: Bearer $TOKEN" ${secondary}/api/tiktok/connection

  Sandbox database: ${stack.sandboxOrigin}/supabase/
  TikTok grants (Revoke access): ${stack.sandboxOrigin}/
  Webhook receiver (events the Worker delivered): ${stack.sandboxOrigin}/webhooks
  Run the revocation sweep now: curl ${secondary}/cdn-cgi/handler/scheduled
  Press Ctrl+C to stop.
`)
const warning = stack.health.ok
  ? describeRefusedOrigins([primary, secondary], stack.vars.ALLOWED_ORIGINS ?? '', fromDevVars)
  : describeProblems(stack.health, fromDevVars)
if (warning) console.log(`${warning}\n`)

const code = await stack.exited
if (!stopping) {
  console.error(`\nwrangler dev stopped on its own (exit code ${code}); stopping the sandbox too.\n`)
  shutdown(code || 1)
}
