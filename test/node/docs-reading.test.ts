// docs/reading.md's snippets, run: the status query as PostgREST runs it for a browser (role
// authenticated, the JWT in request.jwt.claims) and the token query as service_role, both against the
// migration on PostgreSQL 15; supabase-js's call, shown to be exactly that query's request; and
// decryptToken in its own Node process, beside copies of src/token-crypto.ts and src/encoding.ts, on
// a value encryptToken sealed and the token query read back.
import { execFile } from 'node:child_process'
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { PostgrestClient } from '@supabase/postgrest-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encryptToken } from '../../src/token-crypto.ts'
import type { Postgres } from '../../supabase/tests/postgres.ts'
import { ALICE, BOB, type Database, project, startCluster } from '../../supabase/tests/seed.ts'
import { ROOT, snippet } from './snippets.ts'

const CAROL = '33333333-3333-4333-8333-333333333333'
const ADVERTISERS = `'[{"id":"7012345678901234567","name":"Brand A"},{"id":"7012345678901234599","name":"Brand B"}]'`
// A base64 key with `+` and `/` in it, as `openssl rand -base64 32` makes them.
const KEY_SPEC = `k1:${Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 53 + 251) & 255)).toString('base64')}`

const statusJs = snippet('docs/reading.md', 'status-js')
const statusSql = snippet('docs/reading.md', 'status-sql')
const tokenSql = snippet('docs/reading.md', 'token-sql')
const decrypt = snippet('docs/reading.md', 'decrypt-token')

let pg: Postgres
let db: Database
beforeAll(async () => {
  pg = await startCluster()
  db = await project(pg, 'reading')
})
afterAll(() => pg?.stop())

/** Claim and complete for `user`, storing `token` as the Worker would. */
async function connect(user: string, token: string) {
  const nonce = `nonce-${user}`
  expect(await db.as('service_role', `select public.tiktok_claim_exchange('${nonce}', '${user}', 'h', 'r') ->> 'outcome'`)).toBe('claimed')
  const done = await db.as(
    'service_role',
    `select public.tiktok_complete_exchange('${nonce}', '${user}', 'r', '${token}', '7012345678901234567', ${ADVERTISERS}, '/profile') ->> 'outcome'`,
  )
  expect(done).toBe('ok')
}

/** A statement's rows as JSON, run as `role` with PostgREST's request.jwt.claims (no subject when `sub` is null). */
async function rowsAs(role: string, sub: string | null, statement: string): Promise<Record<string, unknown>[]> {
  const claims = JSON.stringify(sub ? { sub, role } : { role })
  const out = await db.sql(
    `set role ${role}; select set_config('request.jwt.claims', '${claims}', false) is null;
     select coalesce(json_agg(r), '[]') from (${statement.trim().replace(/;$/, '')}) r`,
  )
  return JSON.parse(out.split('\n').at(-1)!) as Record<string, unknown>[]
}

describe('docs/reading.md: from the browser', () => {
  it(`${statusSql.where} as authenticated answers the user's own row only, without the token`, async () => {
    await connect(ALICE, 'tok-alice-secret')
    await connect(BOB, 'tok-bob-secret')
    const mine = await rowsAs('authenticated', ALICE, statusSql.code)
    expect(mine).toHaveLength(1)
    expect(Object.keys(mine[0]!)).toEqual(['user_id', 'advertiser_id', 'advertiser_name', 'advertisers', 'connected_at', 'revoked_at', 'verified_at'])
    expect(mine[0]).toMatchObject({ user_id: ALICE, advertiser_id: '7012345678901234567', advertiser_name: 'Brand A', revoked_at: null })
    expect(JSON.stringify(mine)).not.toContain('tok-')
    expect((await rowsAs('authenticated', BOB, statusSql.code)).map((r) => r.user_id)).toEqual([BOB])
    // Not connected: no row. No subject in the JWT: no row.
    expect(await rowsAs('authenticated', CAROL, statusSql.code)).toEqual([])
    expect(await rowsAs('authenticated', null, statusSql.code)).toEqual([])
    // anon holds nothing; authenticated cannot read the token from the table.
    await expect(rowsAs('anon', null, statusSql.code)).rejects.toThrow(/permission denied/)
    await expect(rowsAs('authenticated', ALICE, 'select access_token from public.tiktok_connections')).rejects.toThrow(/permission denied/)
  })

  it(`${statusJs.where} is that query's request (GET /rest/v1/tiktok_connection_status?select=*), and reads its answer`, async () => {
    const asked: string[] = []
    const answer = await rowsAs('authenticated', ALICE, statusSql.code)
    const supabase = new PostgrestClient('https://project.supabase.co/rest/v1', {
      fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
        asked.push(`${init?.method ?? 'GET'} ${String(input)}`)
        return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } })
      },
    })
    const AsyncFunction = (async () => {}).constructor as new (...args: string[]) => (client: unknown) => Promise<{ data: unknown; error: unknown }>
    const run = new AsyncFunction('supabase', `${statusJs.code}\nreturn { data, error }`)
    const { data, error } = await run(supabase)
    expect(asked).toEqual(['GET https://project.supabase.co/rest/v1/tiktok_connection_status?select=*'])
    expect(error).toBeNull()
    expect(data).toEqual(answer)
  })
})

describe('docs/reading.md: from a server', () => {
  it(`${tokenSql.where} as service_role and ${decrypt.where} give back the token encryptToken sealed`, async () => {
    const sealed = await encryptToken('tok-carol-123456789', CAROL, KEY_SPEC)
    await db.sql(`insert into auth.users (id, email) values ('${CAROL}', 'carol@example.com')`)
    await connect(CAROL, sealed)
    const [row, ...more] = await rowsAs('service_role', null, tokenSql.code.replace('$1', `'${CAROL}'`))
    expect(more).toEqual([])
    expect(row).toEqual({ access_token: sealed, advertiser_id: '7012345678901234567' })
    // Only service_role reads it.
    await expect(rowsAs('authenticated', CAROL, tokenSql.code.replace('$1', `'${CAROL}'`))).rejects.toThrow(/permission denied/)

    // The reader's folder: the two copied files and their module, `row` and `userId` theirs.
    const dir = mkdtempSync(join(tmpdir(), 'docs-reading-'))
    try {
      copyFileSync(join(ROOT, 'src/token-crypto.ts'), join(dir, 'token-crypto.ts'))
      copyFileSync(join(ROOT, 'src/encoding.ts'), join(dir, 'encoding.ts'))
      const file = join(dir, 'read-token.mjs')
      writeFileSync(
        file,
        `const row = JSON.parse(process.env.ROW)
const userId = process.env.USER_ID
${decrypt.code}
console.log(JSON.stringify({ token }))
`,
      )
      const run = (userId: string) =>
        promisify(execFile)(process.execPath, [file], { env: { ...process.env, TOKEN_ENCRYPTION_KEY: KEY_SPEC, ROW: JSON.stringify(row), USER_ID: userId } })
      const { stdout } = await run(CAROL)
      expect(JSON.parse(stdout)).toEqual({ token: 'tok-carol-123456789' })
      // Another user's id: it does not decrypt.
      await expect(run(ALICE)).rejects.toThrow(/does not decrypt/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
