// docs/events.md's snippets, run: the webhook receiver in its own Node process against deliveries
// signed by the Standard Webhooks rule (the Worker's own signing is held to the reference library in
// the workerd suite), and the SQL against the sandbox's migrated
// PostgreSQL (PGlite).
import { type ChildProcess, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import type { SandboxDatabase } from '../../sandbox/database.ts'
import { openDatabase } from '../../sandbox/pglite.ts'
import { ROOT, snippet } from './snippets.ts'

const SECRET = `whsec_${Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 255)).toString('base64')}`
const USER = { id: '9d7c2b1a-4e3f-4a5b-8c6d-7e8f9a0b1c2d', email: 'docs@example.com' }

/** The three headers of one delivery, as the standard (and src/events/sign.ts) makes them. */
const signed = (id: string, timestamp: number, body: string) => ({
  'webhook-id': id,
  'webhook-timestamp': String(timestamp),
  'webhook-signature': `v1,${createHmac('sha256', Buffer.from(SECRET.slice('whsec_'.length), 'base64'))
    .update(`${id}.${timestamp}.${body}`)
    .digest('base64')}`,
})

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

describe('docs/events.md: the webhook receiver', () => {
  const receiver = snippet('docs/events.md', 'webhook-receiver')
  let child: ChildProcess | undefined
  afterAll(() => child?.kill())

  it(`${receiver.where} verifies a real delivery, handles it once, and refuses a forged one`, async () => {
    // Beside node_modules, so its `import 'standardwebhooks'` resolves as in a reader's project; the
    // reader's own seenBefore and handle are the test's.
    const dir = join(ROOT, 'node_modules/.cache/docs-snippets')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, 'webhook-receiver.mjs')
    writeFileSync(
      file,
      `const seen = new Set()
globalThis.seenBefore = async (id) => { const was = seen.has(id); seen.add(id); return was }
globalThis.handle = async (event) => console.log(JSON.stringify(event))
${receiver.code}
console.log('listening')
`,
    )
    const port = await freePort()
    child = spawn(process.execPath, [file], { env: { ...process.env, WEBHOOK_SECRET: SECRET, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout!.on('data', (chunk) => (out += chunk))
    await expect.poll(() => out, { timeout: 10_000 }).toContain('listening')

    const id = crypto.randomUUID()
    const body = JSON.stringify({
      id,
      type: 'tiktok.connection.revoked',
      user_id: USER.id,
      advertiser: { id: '7012345678901234567', name: 'Brand A' },
      detected_by: 'sweep',
      code: 40105,
    })
    const headers = signed(id, Math.floor(Date.now() / 1000), body)
    const deliver = (h: Record<string, string>) =>
      fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: { 'content-type': 'application/json', ...h }, body })

    expect((await deliver(headers)).status).toBe(204)
    expect((await deliver(headers)).status).toBe(204) // the same delivery again: at least once
    expect((await deliver({ ...headers, 'webhook-signature': 'v1,AAAA' })).status).toBe(400)
    const stale = signed(id, Math.floor(Date.now() / 1000) - 600, body)
    expect((await deliver(stale)).status).toBe(400)
    const handled = out.split('\n').filter((line) => line.startsWith('{'))
    expect(handled.map((line) => JSON.parse(line).id)).toEqual([id])
  })
})

describe('docs/events.md: the SQL, against the migrated database', () => {
  let db: SandboxDatabase
  afterAll(() => db?.close())

  const event = async () => {
    const [row] = await db.rows<{ id: string }>(
      `select public.tiktok_write_event($1, 'tiktok.connection.connected', now(), now(), '7012345678901234567', 'Brand A',
         '[{"id":"7012345678901234567","name":"Brand A"}]'::jsonb, '{"reconnected":false}'::jsonb) as id`,
      [USER.id],
    )
    return row!.id
  }

  it(`${snippet('docs/events.md', 'read-events').where}, ${snippet('docs/events.md', 'mark-delivered').where} and ${snippet('docs/events.md', 'replay').where} run`, async () => {
    db = await openDatabase()
    await db.reset([USER])
    const id = await event()
    const read = await db.rows<{ id: string; payload: { type: string; id: string } }>(snippet('docs/events.md', 'read-events').code.replace(/;$/, ''), [
      '1970-01-01',
    ])
    expect(read.map((r) => r.id)).toEqual([id])
    expect(read[0]!.payload).toMatchObject({ id, type: 'tiktok.connection.connected' })

    await db.rows(snippet('docs/events.md', 'mark-delivered').code.replace(/;$/, ''), [id])
    expect((await db.rows(`select delivered_at from public.tiktok_connection_events where id = $1`, [id]))[0]).not.toMatchObject({ delivered_at: null })

    const undelivered = await event()
    await db.rows(`update public.tiktok_connection_events set attempts = 3 where id = $1 returning id`, [undelivered])
    await db.exec(snippet('docs/events.md', 'replay').code)
    const attempts = await db.rows<{ id: string; attempts: number }>(`select id, attempts from public.tiktok_connection_events order by created_at, id`)
    expect(attempts.find((r) => r.id === undelivered)!.attempts).toBe(0)
  })
})
