// The docs' shell and SDK examples, run as a reader runs them, against `wrangler dev` + the sandbox:
// each snippet's text exactly as in the doc, only its documented placeholders filled in (the origin;
// SERVICE_KEY, USER_ID and ADVERTISER_ID in the environment). curl is the real one, run by `sh -c`
// as a reader's shell runs the lines; the SDK's example is its own Node module.
import { execFile } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import { type Stack, startStack } from '../scripts/stack.ts'
import { ROOT, snippet } from '../test/node/snippets.ts'
import { connectUser } from './connect.ts'

// Ports apart from `npm run dev`'s and the other e2e files'.
const WORKER_PORT = 8881
const SANDBOX_PORT = 8894
// A service key as `openssl rand -base64 32` makes one: `+`, `/` and `=` in it.
const SERVICE_KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 97 + 251) & 255)).toString('base64')
const ADVERTISER = DEMO_ADVERTISERS[0]!

const run = promisify(execFile)

let stack: Stack
beforeAll(async () => {
  stack = await startStack({
    workerPort: WORKER_PORT,
    sandboxPort: SANDBOX_PORT,
    useDevVars: false,
    quiet: true,
    raisedLimits: true,
    vars: { SERVICE_KEYS: `reports:${SERVICE_KEY}` },
  })
  await fetch(`${stack.sandboxOrigin}/__sandbox/reset`, { method: 'POST' })
  expect((await connectUser(stack, DEMO_USER.id)).status).toBe(200)
})
afterAll(async () => {
  await stack?.stop()
})

/** What a reader's shell has set before pasting: the doc's placeholders. */
const readerEnv = () => ({ ...process.env, SERVICE_KEY, USER_ID: DEMO_USER.id, ADVERTISER_ID: ADVERTISER.id })

/** The doc's origin placeholder, and only it, replaced by this stack's. */
function filled(code: string, placeholder: string, origin: string): string {
  expect(code, `the snippet names ${placeholder}`).toContain(placeholder)
  return code.replaceAll(placeholder, origin)
}

describe('docs/proxy.md', () => {
  it(`${snippet('docs/proxy.md', 'proxy-curl').where}: curl through the proxy answers TikTok's code 0 for the advertiser`, async () => {
    const curl = snippet('docs/proxy.md', 'proxy-curl')
    expect(curl.lang).toBe('sh')
    stack.sandbox.tiktok.requests.length = 0
    const { stdout } = await run('sh', ['-c', filled(curl.code, 'https://app.example.com', stack.workerOrigin)], { env: readerEnv() })
    expect(JSON.parse(stdout)).toMatchObject({ code: 0, data: { list: [{ advertiser_id: ADVERTISER.id }] } })
    // The id exact in the bytes, and TikTok got the stored token, never the service key.
    expect(stdout).toMatch(new RegExp(`"advertiser_id":\\s*"${ADVERTISER.id}"`))
    const [sent] = stack.sandbox.tiktok.requests.filter((r) => r.path.includes('/advertiser/info/'))
    expect(sent!.headers['access-token']).toBe((await stack.sandbox.supabase.row(DEMO_USER.id))!.access_token)
    expect(JSON.stringify(stack.sandbox.tiktok.requests)).not.toContain(SERVICE_KEY)
  })

  it(`${snippet('docs/proxy.md', 'proxy-sdk').where}: the SDK's example, as its own Node module, prints code 0 and TikTok's answer`, async () => {
    const sdk = snippet('docs/proxy.md', 'proxy-sdk')
    expect(sdk.lang).toBe('js')
    // Beside node_modules, so its `import 'tiktok-business-api-sdk-official'` resolves as in a reader's project.
    const dir = join(ROOT, 'node_modules/.cache/docs-snippets')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, 'proxy-sdk.mjs')
    writeFileSync(file, `${filled(sdk.code, 'https://app.example.com', stack.workerOrigin)}\n`)
    const { stdout } = await run(process.execPath, [file], { env: readerEnv() })
    const [code, ...body] = stdout.trim().split(' ')
    expect(code).toBe('0')
    expect(JSON.parse(body.join(' '))).toMatchObject({ code: 0, data: { list: [{ advertiser_id: ADVERTISER.id }] } })

    // A key the Worker does not know: the example fails loudly with the Worker's 401.
    const refused = await run(process.execPath, [file], { env: { ...readerEnv(), SERVICE_KEY: 'not-a-service-key-of-this-worker-0000' } }).catch(
      (error: { code?: number; stderr?: string }) => error,
    )
    expect(refused).toMatchObject({ code: 1 })
    expect((refused as { stderr: string }).stderr).toMatch(/Unauthorized|401/)
  })
})

describe('docs/getting-started.md', () => {
  it(`${snippet('docs/getting-started.md', 'sandbox-token').where}: the sandbox token, then GET /api/tiktok/connection with it`, async () => {
    const lines = snippet('docs/getting-started.md', 'sandbox-token')
    expect(lines.lang).toBe('sh')
    const code = filled(filled(lines.code, 'http://127.0.0.1:8790', stack.sandboxOrigin), 'http://127.0.0.1:8787', `http://127.0.0.1:${WORKER_PORT}`)
    const { stdout } = await run('sh', ['-c', code], { env: process.env })
    expect(JSON.parse(stdout)).toMatchObject({ connected: true, advertiser: { id: ADVERTISER.id } })
  })
})
