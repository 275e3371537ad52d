import { env, exports } from 'cloudflare:workers'
import { afterAll, inject, vi } from 'vitest'
import { clock } from '../src/http'
import app from '../src/index'
import type { Row } from '../sandbox/database'
import { remoteDatabase } from '../sandbox/database-remote'
import { createSupabase, createSigningKey } from '../sandbox/supabase'
import { createTikTok } from '../sandbox/tiktok'

export const APP_ORIGIN = 'https://app.example.com'
export const OTHER_ORIGIN = 'https://example.com'
export const USER_ID = '6a1f4c2e-0b7d-4e35-9c1a-2f8e5d7b3a10'
export const OTHER_USER_ID = '0c9b8a7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d'
export const BIG_ID = '7012345678901234567'
export const BIG_ID_2 = '7012345678901234599'
/** What the TikTok stand-in grants unless a test says otherwise. */
export const ADVERTISERS = [
  { id: BIG_ID, name: 'Brand A' },
  { id: BIG_ID_2, name: 'Brand B' },
]

const TIKTOK_HOST = 'business-api.tiktok.com'
const SUPABASE_HOST = 'abc.supabase.co'

// One key pair per test file: the Worker caches the JWKS per isolate, like production.
const signingKey = await createSigningKey('sandbox-key-1')

/**
 * This file's own PostgreSQL with the project's migrations, held by test/database-setup.ts in Node
 * and reached over loopback with the real fetch (the stand-ins replace the Worker's).
 */
export const database = remoteDatabase(inject('sandboxDatabase'), crypto.randomUUID(), globalThis.fetch.bind(globalThis))
afterAll(() => database.close())

/** The test bindings, as vitest.config.ts sets them, for calls that vary one setting. */
export const testEnv = env as unknown as Record<string, string>

/**
 * Stand-ins for TikTok and Supabase behind `fetch`. Anything else the Worker tries to reach fails the
 * request and is recorded in `unexpected`, which every test asserts empty.
 */
export async function harness(options: { bareIds?: boolean; advertisers?: { id: string; name: string }[] } = {}) {
  const tiktok = createTikTok({
    appId: testEnv.TIKTOK_APP_ID!,
    appSecret: testEnv.TIKTOK_APP_SECRET!,
    redirectUris: [`${APP_ORIGIN}/oauth/callback`, `${OTHER_ORIGIN}/oauth/callback`],
    advertisers: options.advertisers ?? ADVERTISERS,
    bareIds: options.bareIds,
  })
  const supabase = await createSupabase(
    {
      url: testEnv.SUPABASE_URL!,
      secretKey: testEnv.SUPABASE_SECRET_KEY!,
      database,
      accounts: [
        { id: USER_ID, email: 'user@example.com' },
        { id: OTHER_USER_ID, email: 'other@example.com' },
      ],
    },
    signingKey,
  )
  const unexpected: string[] = []
  const outbound: Request[] = []

  vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    const request = new Request(input, init)
    outbound.push(request.clone())
    const host = new URL(request.url).host
    // Any *.supabase.co is the same stand-in: tests that need an empty key cache use a project of their own.
    const standIn = host === TIKTOK_HOST ? tiktok.app : host === SUPABASE_HOST || host.endsWith('.supabase.co') ? supabase.app : undefined
    if (!standIn) {
      unexpected.push(request.url)
      return Promise.reject(new Error(`unexpected outbound request to ${request.url}`))
    }
    // Honour the caller's timeout, as a real fetch would, even when the stand-in hangs.
    const signal = init?.signal
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      signal?.addEventListener('abort', () => reject(signal.reason))
      Promise.resolve(standIn.fetch(request)).then(resolve, reject)
    })
  })

  // Retry backoffs and replay polls take no real time: each wait is recorded and returns at once.
  // A test that needs a wait to last until something happens replaces the implementation.
  const sleeps: number[] = []
  const sleep = vi.spyOn(clock, 'sleep').mockImplementation(async (ms) => {
    sleeps.push(ms)
  })

  const logs: string[] = []
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    logs.push(args.map(String).join(' '))
  })

  return {
    tiktok,
    supabase,
    unexpected,
    outbound,
    logs,
    /** Every `clock.sleep` the Worker asked for, in ms; `sleep` is the spy, to make a wait last. */
    sleeps,
    sleep,
    /** The user_accounts row of `id`, as PostgREST would render it. */
    row: async (id: string): Promise<Row> => (await supabase.account(id))!,
    /** Every claim in tiktok_oauth_exchanges, oldest first. */
    exchanges: () => supabase.exchanges(),
    /** Runs SQL as the database owner: for arranging what a test needs (a stale claim, a removed row). */
    sql: (text: string, params?: unknown[]) => database.rows(text, params),
    /** TikTok API calls whose path ends with `suffix`. */
    tiktokCalls: (suffix: string) => tiktok.requests.filter((r) => r.path.endsWith(suffix)),
    /** `METHOD /path` of every PostgREST call, in order. */
    supabaseCalls: () => supabase.requests.map((r) => `${r.method} ${r.path}`),
  }
}

export type Harness = Awaited<ReturnType<typeof harness>>

/**
 * A fault that holds a stand-in's answer: `reached` resolves when the request arrives, and it answers
 * once `release()` is called. Lets a test act while a request is in flight, with no clock involved.
 */
export function hold() {
  let reached!: () => void
  let release!: () => void
  const arrived = new Promise<void>((resolve) => (reached = resolve))
  const released = new Promise<void>((resolve) => (release = resolve))
  return { fault: { hold: { reached, release: released } }, reached: arrived, release }
}

/** Settings or bindings (a rate limiter) that replace the configured ones for one call. */
export type Bindings = Record<string, string | RateLimit | undefined>

/** Calls the deployed-shape Worker; `bindings` replaces settings for this call only. */
export function call(url: string, init: RequestInit = {}, bindings?: Bindings): Promise<Response> {
  const request = new Request(url, init)
  if (!bindings) return exports.default.fetch(request)
  return Promise.resolve(app.fetch(request, { ...testEnv, ...bindings }, { waitUntil() {}, passThroughOnException() {}, props: {} } as unknown as ExecutionContext))
}

export type Started = { response: Response; body: Record<string, unknown>; state: string; cookie: string; authorizeUrl: URL }

/** POST /start as a signed-in user on `origin`. */
export async function start(
  h: Harness,
  options: { origin?: string; userId?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Started> {
  const origin = options.origin ?? APP_ORIGIN
  const token = options.token ?? (await h.supabase.signAccessToken(options.userId ?? USER_ID))
  const response = await call(`${origin}/api/tiktok/oauth/start`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      origin,
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  })
  const body = (await response.json()) as Record<string, unknown>
  const authorizeUrl = new URL(typeof body.authorize_url === 'string' ? body.authorize_url : 'about:blank')
  const setCookie = response.headers.get('set-cookie') ?? ''
  const cookie = /__Host-tiktok_oauth_binding=([^;]*)/.exec(setCookie)?.[1] ?? ''
  return { response, body, state: authorizeUrl.searchParams.get('state') ?? '', cookie, authorizeUrl }
}

/** POST /exchange as the callback page does. */
export function exchange(
  input: { state: string; authCode: string; cookie?: string; origin?: string; headers?: Record<string, string> },
  bindings?: Bindings,
): Promise<Response> {
  const origin = input.origin ?? APP_ORIGIN
  return call(
    `${origin}/api/tiktok/oauth/exchange`,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin,
        ...(input.cookie ? { cookie: `__Host-tiktok_oauth_binding=${input.cookie}` } : {}),
        ...input.headers,
      },
      body: JSON.stringify({ auth_code: input.authCode, state: input.state }),
    },
    bindings,
  )
}

/** Every secret the Worker holds or receives during a test: none may appear in a response or a log. */
export async function secretsOf(h: Harness, extra: string[] = []): Promise<string[]> {
  const tokens = (await h.sql('select tiktok_access_token from public.user_accounts where tiktok_access_token is not null')).map((r) => r.tiktok_access_token as string)
  return [testEnv.TIKTOK_APP_SECRET!, testEnv.SUPABASE_SECRET_KEY!, testEnv.STATE_SECRET!, ...tokens, ...extra]
}

/** A completed connection for `userId`: start, TikTok authorize, exchange. */
export async function connect(h: Harness, options: { userId?: string; bindings?: Bindings } = {}) {
  const s = await start(h, { userId: options.userId })
  const code = h.tiktok.issueCode()
  const response = await exchange({ state: s.state, authCode: code, cookie: s.cookie }, options.bindings)
  return { status: response.status, body: (await response.json()) as Record<string, any>, code, started: s }
}

/** Calls an authenticated endpoint as `userId` (a fresh Supabase token each time). */
export async function asUser(
  h: Harness,
  path: string,
  init: RequestInit & { userId?: string; bindings?: Bindings } = {},
): Promise<{ status: number; body: Record<string, any> }> {
  const token = await h.supabase.signAccessToken(init.userId ?? USER_ID)
  const response = await call(
    `${APP_ORIGIN}${path}`,
    { ...init, headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string>) } },
    init.bindings,
  )
  return { status: response.status, body: (await response.json()) as Record<string, any> }
}

/**
 * The same submission twice, the second while the first is at TikTok's token endpoint: the second
 * finds the claim pending and polls, and its poll lasts until the first has answered. `submit` must
 * pass settings (`call(..., bindings)`), so both run in the test's own context: through the Worker's
 * entry point, workerd refuses one request resuming another's.
 */
export async function twinSubmissions(h: Harness, submit: () => Promise<Response>): Promise<[Response, Response]> {
  const atTikTok = hold()
  h.tiktok.faults.add('token', atTikTok.fault)
  const first = submit()
  const firstAnswered = first.then(
    () => undefined,
    () => undefined,
  )
  await atTikTok.reached
  let polling!: () => void
  const polled = new Promise<void>((resolve) => (polling = resolve))
  h.sleep.mockImplementation(async () => {
    polling()
    await firstAnswered
  })
  const second = submit()
  await polled
  atTikTok.release()
  return [await first, await second]
}
