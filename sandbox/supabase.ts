import { Hono } from 'hono'
import { sign } from 'hono/jwt'
import { faultResponse, Faults } from './faults.ts'
import { databasePage, mask } from './pages.ts'
import type { Row, SandboxDatabase, User } from './database.ts'
import { type RecordedRequest, recorded } from './types.ts'

export type SupabaseOptions = {
  /** The project URL the tokens name as issuer, e.g. `https://abc.supabase.co`. */
  url: string
  /** The `sb_secret_...` key the stand-in accepts in `apikey`. */
  secretKey: string
  /** A legacy service_role JWT, accepted as `apikey` and as bearer. */
  legacyServiceKey?: string
  /** The database behind `/rest/v1`; emptied and seeded with `users` on creation and on reset. */
  database: SandboxDatabase
  /** The rows of `auth.users`. */
  users: User[]
  /** The password of each user who may sign in, by email (Supabase Auth keeps a hash; the demo keeps it here). */
  passwords?: Record<string, string>
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

/**
 * A stand-in for the parts of Supabase the Worker uses: PostgREST's `/rest/v1` over a real PostgreSQL
 * holding the project's migrations (see postgrest.ts), the API key checks of Supabase's gateway,
 * Supabase Auth's JWKS, and a demo sign-in that mints real ES256 access tokens.
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

  const { database } = options
  await database.reset(options.users)

  const authorizeKey = (headers: Headers): Response | undefined => {
    const apikey = headers.get('apikey')
    const bearer = headers.get('authorization')?.replace(/^Bearer /, '')
    const known = [options.secretKey, options.legacyServiceKey].filter(Boolean)
    if (!apikey || !known.includes(apikey))
      return Response.json({ message: 'Invalid API key', hint: 'Double check your Supabase `anon` or `service_role` API key.' }, { status: 401 })
    // Supabase's gateway refuses a secret key presented as a JWT.
    if (bearer?.startsWith('sb_')) return Response.json({ message: 'Invalid JWT: secret keys are not JWTs' }, { status: 401 })
    if (bearer && bearer !== options.legacyServiceKey)
      return Response.json({ code: 'PGRST301', details: null, hint: null, message: 'JWSError JWSInvalidSignature' }, { status: 401 })
    return undefined
  }

  const app = new Hono()

  app.use('/rest/*', async (c, next) => {
    const url = new URL(c.req.url)
    if (options.record !== false) requests.push(await recorded(c.req.raw))
    // The schema check is its own target: the Worker makes it once per isolate, so a fault queued for
    // "the next call" must not depend on whether the isolate has asked yet.
    const schemaCheck = url.pathname.endsWith('/rpc/tiktok_connect_schema')
    const specific = url.pathname.endsWith('/rpc/tiktok_complete_exchange') ? faults.take('rpc', c.req.header('x-sandbox-fault')) : {}
    const fault = schemaCheck
      ? faults.take('schema', c.req.header('x-sandbox-fault'))
      : Object.keys(specific).length
        ? specific
        : faults.take('rest', c.req.header('x-sandbox-fault'))
    await faults.delay(fault)
    const faulted = faultResponse(fault)
    if (faulted) return faulted
    const denied = authorizeKey(c.req.raw.headers)
    if (denied) return denied
    await next()
  })

  // Tables and functions are the migrations' own, on PostgreSQL: the stand-in adds only keys and faults.
  app.all('/rest/v1/*', (c) => database.rest(c.req.raw))

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
    if (c.req.query('grant_type') !== 'password') return c.json({ code: 400, error_code: 'validation_failed', msg: 'Unsupported grant type' }, 400)
    const body = (await c.req.json().catch(() => ({}))) as { email?: unknown; password?: unknown }
    const known = typeof body.email === 'string' && options.passwords?.[body.email] !== undefined && options.passwords[body.email] === body.password
    const [user] = known ? await database.rows<User>('select id, email from auth.users where email = $1', [body.email]) : []
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

  /**
   * A user's connection as PostgreSQL renders it, every column of `tiktok_connections`; each null
   * when the user is not connected. Undefined when there is no such user.
   */
  const row = async (userId: string): Promise<Row | undefined> =>
    (
      await database.rows(
        `select u.id as user_id, c.access_token, c.advertiser_id, c.advertiser_name, c.advertisers, c.connected_at, c.revoked_at, c.revoked_code, c.verified_at
           from auth.users u left join public.tiktok_connections c on c.user_id = u.id where u.id = $1`,
        [userId],
      )
    )[0]

  /** The connector's table as a page, token masked: what the round trip wrote. */
  app.get('/', async (c) => {
    const rows = await database.rows<Row & { email: string }>(
      'select c.*, u.email from public.tiktok_connections c join auth.users u on u.id = c.user_id order by u.email, c.user_id',
    )
    return c.html(databasePage(rows.map(({ email, ...r }) => ({ email, row: { ...r, access_token: mask(r.access_token) } }))))
  })

  return {
    app,
    faults,
    requests,
    database,
    row,
    /** Every claim in tiktok_oauth_exchanges, oldest first. */
    exchanges: () => database.rows('select * from public.tiktok_oauth_exchanges order by created_at'),
    signingKey: key,
    signAccessToken,
    async reset() {
      await database.reset(options.users)
      faults.clear()
      requests.length = 0
    },
  }
}
