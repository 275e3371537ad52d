import { Hono } from 'hono'
import { sign } from 'hono/jwt'
import { faultResponse, Faults } from './faults.ts'
import { databasePage } from './pages.ts'
import type { RecordedRequest } from './tiktok.ts'

export type Row = Record<string, unknown>

/** The seed's columns plus what supabase/migrations adds; a row of the product's user_accounts. */
export const accountRow = (id: string, email: string): Row => ({
  id,
  email,
  tiktok_access_token: null,
  tiktok_business_id: null,
  tiktok_account_id: null,
  tiktok_advertisers: null,
  tiktok_connected_at: null,
  tiktok_revoked_at: null,
})

export type SupabaseOptions = {
  /** The project URL the tokens name as issuer, e.g. `https://abc.supabase.co`. */
  url: string
  /** The `sb_secret_...` key the stand-in accepts in `apikey`. */
  secretKey: string
  /** A legacy service_role JWT, accepted as `apikey` and as bearer. */
  legacyServiceKey?: string
  rows: Row[]
  /** Who may sign in with a password; `id` must match a row. */
  users?: { id: string; email: string; password: string }[]
  /** Keep every REST request for inspection (default); the benchmark turns it off. */
  record?: boolean
}

type SigningKey = { privateJwk: JsonWebKey & { kid: string; alg: 'ES256' }; publicJwk: JsonWebKey & { kid: string; alg: 'ES256' } }

/** A fresh ES256 key pair, as Supabase's asymmetric JWT signing keys are. */
export async function createSigningKey(kid = crypto.randomUUID()): Promise<SigningKey> {
  const pair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair
  const privateJwk = (await crypto.subtle.exportKey('jwk', pair.privateKey)) as JsonWebKey
  const publicJwk = (await crypto.subtle.exportKey('jwk', pair.publicKey)) as JsonWebKey
  return {
    privateJwk: { ...privateJwk, kid, alg: 'ES256' },
    publicJwk: { kty: publicJwk.kty, crv: publicJwk.crv, x: publicJwk.x, y: publicJwk.y, kid, alg: 'ES256', use: 'sig', key_ops: ['verify'] },
  }
}

// PostgreSQL's JSON form of a timestamptz: microseconds and an offset, as PostgREST answers it.
const timestamp = () => new Date().toISOString().replace('Z', '000+00:00')

const mask = (value: unknown) => (typeof value === 'string' && value.length > 8 ? `${value.slice(0, 4)}…${value.slice(-4)}` : value)

/**
 * A stand-in for the parts of Supabase the Worker uses: PostgREST's `/rest/v1/user_accounts`
 * (`eq` filters, `select`, `Prefer: return=representation`, key checks) and Supabase Auth's JWKS,
 * plus a demo sign-in that mints real ES256 access tokens.
 */
export async function createSupabase(options: SupabaseOptions, signingKey?: SigningKey) {
  const key = signingKey ?? (await createSigningKey())
  const faults = new Faults()
  const requests: RecordedRequest[] = []
  const issuer = `${options.url}/auth/v1`

  /** A Supabase-shaped access token for `userId`; `claims` override the defaults (tests forge with it). */
  const signAccessToken = (userId: string, claims: Record<string, unknown> = {}) => {
    const now = Math.floor(Date.now() / 1000)
    return sign(
      { iss: issuer, sub: userId, aud: 'authenticated', role: 'authenticated', iat: now, exp: now + 3600, session_id: crypto.randomUUID(), ...claims },
      key.privateJwk,
    )
  }

  const pgError = (status: number, code: string, message: string) =>
    Response.json({ code, details: null, hint: null, message }, { status })

  const authorizeKey = (headers: Headers): Response | undefined => {
    const apikey = headers.get('apikey')
    const bearer = headers.get('authorization')?.replace(/^Bearer /, '')
    const known = [options.secretKey, options.legacyServiceKey].filter(Boolean)
    if (!apikey || !known.includes(apikey)) return Response.json({ message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' }, { status: 401 })
    // Supabase's gateway refuses a secret key presented as a JWT.
    if (bearer && bearer.startsWith('sb_')) return Response.json({ message: 'Invalid JWT: secret keys are not JWTs' }, { status: 401 })
    if (bearer && bearer !== options.legacyServiceKey) return pgError(401, 'PGRST301', 'JWSError JWSInvalidSignature')
    return undefined
  }

  // The tables supabase/migrations defines, with their primary keys.
  type Table = { key: string; columns: Set<string>; defaults: () => Row; rows: Row[] }
  const tables: Record<string, Table> = {
    user_accounts: { key: 'id', columns: new Set(Object.keys(accountRow('', ''))), defaults: () => ({}), rows: options.rows.map((r) => ({ ...r })) },
    tiktok_oauth_exchanges: {
      key: 'state_nonce',
      columns: new Set(['state_nonce', 'user_id', 'code_hash', 'claimed_by', 'status', 'failed_attempts', 'result', 'created_at', 'claimed_at']),
      defaults: () => ({ status: 'pending', failed_attempts: 0, result: null, created_at: timestamp(), claimed_at: timestamp() }),
      rows: [],
    },
  }
  const rows = tables.user_accounts!.rows
  const exchanges = tables.tiktok_oauth_exchanges!.rows

  /** PostgREST filters the Worker uses: `col=eq.value`, `col=is.null`, `col=not.is.null`. */
  const filtersOf = (params: URLSearchParams): ((row: Row) => boolean) | Response => {
    const filters: ((row: Row) => boolean)[] = []
    for (const [column, expr] of params) {
      if (column === 'select' || column === 'on_conflict' || column === 'columns') continue
      if (expr.startsWith('eq.')) filters.push((row) => String(row[column] ?? '') === expr.slice(3) && row[column] !== null)
      else if (expr === 'is.null') filters.push((row) => row[column] === null || row[column] === undefined)
      else if (expr === 'not.is.null') filters.push((row) => row[column] !== null && row[column] !== undefined)
      else return pgError(400, 'PGRST100', `sandbox supports eq, is.null and not.is.null filters, got ${column}=${expr}`)
    }
    return (row) => filters.every((f) => f(row))
  }

  const project = (row: Row, select: string | null) =>
    !select || select === '*' ? { ...row } : Object.fromEntries(select.split(',').map((c) => [c.trim(), row[c.trim()] ?? null]))

  const wantsRows = (prefer: string | undefined) => /return=representation/.test(prefer ?? '')

  const app = new Hono()

  app.use('/rest/*', async (c, next) => {
    const url = new URL(c.req.url)
    if (options.record !== false) requests.push({
      method: c.req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: Object.fromEntries(c.req.raw.headers),
      body: c.req.method === 'GET' ? '' : await c.req.raw.clone().text(),
    })
    const specific = url.pathname.endsWith('/rpc/tiktok_complete_exchange') ? faults.take('rpc', c.req.header('x-sandbox-fault')) : {}
    const fault = Object.keys(specific).length ? specific : faults.take('rest', c.req.header('x-sandbox-fault'))
    await faults.delay(fault)
    const faulted = faultResponse(fault)
    if (faulted) return faulted
    const denied = authorizeKey(c.req.raw.headers)
    if (denied) return denied
    await next()
  })

  // The SQL functions supabase/migrations defines, each in one synchronous step (so atomic here).
  const MAX_FAILED_ATTEMPTS = 5
  const STALE_CLAIM_MS = 120_000
  const stale = (claim: Row) => claim.status === 'pending' && Date.parse(claim.claimed_at as string) < Date.now() - STALE_CLAIM_MS
  const summaryOf = (userId: unknown) => {
    const account = rows.find((r) => r.id === userId)
    if (!account || account.tiktok_connected_at === null || account.tiktok_revoked_at !== null) return null
    return {
      business_id: account.tiktok_business_id,
      account_id: account.tiktok_account_id,
      advertisers: account.tiktok_advertisers ?? [],
      connected_at: account.tiktok_connected_at,
    }
  }
  const rpc: Record<string, (a: Record<string, unknown>) => unknown> = {
    tiktok_claim_exchange(a) {
      if (!rows.some((r) => r.id === a.p_user_id)) return pgError(409, '23503', 'insert or update on table "tiktok_oauth_exchanges" violates foreign key constraint')
      const claim = exchanges.find((e) => e.state_nonce === a.p_state_nonce)
      if (!claim) {
        exchanges.push({
          ...tables.tiktok_oauth_exchanges!.defaults(),
          state_nonce: a.p_state_nonce,
          user_id: a.p_user_id,
          code_hash: a.p_code_hash,
          claimed_by: a.p_claimed_by,
        })
        return { outcome: 'claimed' }
      }
      const failed = (claim.failed_attempts as number) + (stale(claim) ? 1 : 0)
      if (claim.user_id === a.p_user_id && (claim.status === 'released' || stale(claim)) && failed < MAX_FAILED_ATTEMPTS) {
        Object.assign(claim, { code_hash: a.p_code_hash, claimed_by: a.p_claimed_by, status: 'pending', claimed_at: timestamp(), failed_attempts: failed })
        return { outcome: 'claimed' }
      }
      if (claim.user_id !== a.p_user_id) return { outcome: 'used' }
      if (claim.status === 'released' || stale(claim)) return { outcome: 'locked' }
      if (claim.status === 'pending' && claim.claimed_by === a.p_claimed_by) return { outcome: 'claimed' }
      if (claim.code_hash !== a.p_code_hash) return { outcome: 'used' }
      if (claim.status === 'pending') return { outcome: 'pending' }
      return { outcome: 'done', return_to: (claim.result as { return_to: string }).return_to, connection: summaryOf(a.p_user_id) }
    },
    tiktok_release_exchange(a) {
      const claim = exchanges.find((e) => e.state_nonce === a.p_state_nonce && e.claimed_by === a.p_claimed_by)
      if (claim?.status === 'pending') Object.assign(claim, { status: 'released', failed_attempts: (claim.failed_attempts as number) + 1 })
      return { outcome: claim?.status ?? 'gone' }
    },
    tiktok_complete_exchange(a) {
      const claim = exchanges.find(
        (e) => e.state_nonce === a.p_state_nonce && e.user_id === a.p_user_id && e.claimed_by === a.p_claimed_by && e.status === 'pending',
      )
      if (!claim) return { outcome: 'claim_lost' }
      const account = rows.find((r) => r.id === a.p_user_id)
      if (!account) return { outcome: 'account_not_found' }
      const result = a.p_result as { business_id: string; account_id: string; advertisers: unknown; return_to: string }
      const connectedAt = timestamp()
      Object.assign(account, {
        tiktok_access_token: a.p_access_token,
        tiktok_business_id: result.business_id,
        tiktok_account_id: result.account_id,
        tiktok_advertisers: result.advertisers,
        tiktok_connected_at: connectedAt,
        tiktok_revoked_at: null,
      })
      Object.assign(claim, { status: 'done', result: { return_to: result.return_to } })
      return { outcome: 'ok', connected_at: connectedAt }
    },
  }

  app.post('/rest/v1/rpc/:fn', async (c) => {
    const fn = rpc[c.req.param('fn')]
    if (!fn) return pgError(404, 'PGRST202', `Could not find the function public.${c.req.param('fn')} in the schema cache`)
    const answer = fn((await c.req.json()) as Record<string, unknown>)
    return answer instanceof Response ? answer : c.json(answer)
  })

  app.on(['GET', 'POST', 'PATCH', 'DELETE'], '/rest/v1/:table', async (c) => {
    const table = tables[c.req.param('table')]
    if (!table) return pgError(404, 'PGRST205', `Could not find the table 'public.${c.req.param('table')}' in the schema cache`)
    const params = new URL(c.req.url).searchParams
    const select = params.get('select')
    const match = filtersOf(params)
    if (match instanceof Response) return match
    if (c.req.method === 'GET') return c.json(table.rows.filter(match).map((row) => project(row, select)))

    if (c.req.method === 'DELETE') {
      const gone = table.rows.filter(match)
      table.rows.splice(0, table.rows.length, ...table.rows.filter((row) => !gone.includes(row)))
      return wantsRows(c.req.header('prefer')) ? c.json(gone.map((row) => project(row, select))) : c.body(null, 204)
    }

    let body: unknown
    try {
      body = await c.req.json()
    } catch {
      return pgError(400, 'PGRST102', 'Empty or invalid json')
    }
    const records = (Array.isArray(body) ? body : [body]) as Row[]
    const unknown = records.flatMap((r) => Object.keys(r)).find((k) => !table.columns.has(k))
    if (unknown) return pgError(400, 'PGRST204', `Could not find the '${unknown}' column of '${c.req.param('table')}' in the schema cache`)

    if (c.req.method === 'PATCH') {
      const updated = table.rows.filter(match)
      for (const row of updated) Object.assign(row, records[0])
      // No match is still a success: 204, or 200 [] with return=representation.
      return wantsRows(c.req.header('prefer')) ? c.json(updated.map((row) => project(row, select))) : c.body(null, 204)
    }

    // POST: insert; `resolution=ignore-duplicates` is ON CONFLICT DO NOTHING.
    const ignoreDuplicates = /resolution=ignore-duplicates/.test(c.req.header('prefer') ?? '')
    const inserted: Row[] = []
    for (const record of records) {
      if (table === tables.tiktok_oauth_exchanges && !rows.some((r) => r.id === record.user_id))
        return pgError(409, '23503', 'insert or update on table "tiktok_oauth_exchanges" violates foreign key constraint')
      if (table.rows.some((row) => row[table.key] === record[table.key])) {
        if (ignoreDuplicates) continue
        return pgError(409, '23505', `duplicate key value violates unique constraint "${c.req.param('table')}_pkey"`)
      }
      const row = { ...table.defaults(), ...record }
      table.rows.push(row)
      inserted.push(row)
    }
    return wantsRows(c.req.header('prefer')) ? c.json(inserted.map((row) => project(row, select)), 201) : c.body(null, 201)
  })

  app.get('/auth/v1/.well-known/jwks.json', async (c) => {
    const fault = faults.take('jwks', c.req.header('x-sandbox-fault'))
    await faults.delay(fault)
    return faultResponse(fault) ?? c.json({ keys: [key.publicJwk] })
  })

  // Supabase Auth answers browsers from any origin; so does the stand-in.
  app.use('/auth/*', async (c, next) => {
    if (c.req.method === 'OPTIONS')
      return c.body(null, 204, {
        'access-control-allow-origin': '*',
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'apikey, authorization, content-type, x-client-info',
      })
    await next()
    c.header('access-control-allow-origin', '*')
  })

  /** Password sign-in, shaped like Supabase Auth's `POST /auth/v1/token?grant_type=password`. */
  app.post('/auth/v1/token', async (c) => {
    if (c.req.query('grant_type') !== 'password')
      return c.json({ code: 400, error_code: 'validation_failed', msg: 'Unsupported grant type' }, 400)
    const body = (await c.req.json().catch(() => ({}))) as { email?: string; password?: string }
    const user = options.users?.find((u) => u.email === body.email && u.password === body.password)
    if (!user) return c.json({ code: 400, error_code: 'invalid_credentials', msg: 'Invalid login credentials' }, 400)
    const accessToken = await signAccessToken(user.id, { email: user.email })
    return c.json({
      access_token: accessToken,
      token_type: 'bearer',
      expires_in: 3600,
      expires_at: Math.floor(Date.now() / 1000) + 3600,
      refresh_token: crypto.randomUUID(),
      user: { id: user.id, email: user.email, aud: 'authenticated', role: 'authenticated' },
    })
  })

  /** The rows as a page, token masked: what the round trip wrote. */
  app.get('/', (c) => c.html(databasePage(rows.map((r) => ({ ...r, tiktok_access_token: mask(r.tiktok_access_token ?? null) })))))

  return {
    app,
    faults,
    requests,
    rows,
    signingKey: key,
    signAccessToken,
    exchanges,
    reset() {
      rows.splice(0, rows.length, ...options.rows.map((r) => ({ ...r })))
      exchanges.length = 0
      faults.clear()
      requests.length = 0
    },
  }
}
