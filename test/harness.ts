import { createExecutionContext, waitOnExecutionContext } from 'cloudflare:test'
import { env } from 'cloudflare:workers'
import { afterAll, expect, inject, vi } from 'vitest'
import { clock } from '../src/clock'
import type { QuotaGovernor } from '../src/quota/governor'
import { hmacKey, TokenSigner } from '../src/signed'
import worker from '../src/index'
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
/** The Worker's once-per-isolate question whether the database holds its schema. */
export const SCHEMA_CHECK = '/rest/v1/rpc/tiktok_connect_schema'
const SUPABASE_HOST = 'abc.supabase.co'
const WEBHOOK_HOST = 'hooks.example.com'

/**
 * 32 key bytes in base64, different for each `seed` and all distinct (the Worker refuses keys with
 * fewer than 8 distinct bytes as placeholders).
 */
export const testKeyBase64 = (seed: number): string => btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => (i * 31 + seed * 17) & 255)))

/** The webhook receiver's URL and signing secret, for tests that turn deliveries on. */
export const WEBHOOK_URL = `https://${WEBHOOK_HOST}/tiktok/events`
export const WEBHOOK_SECRET = `whsec_${btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => i * 7 + 1)))}`

/** How the receiver answers one delivery: an HTTP status, a redirect elsewhere, or never. */
export type ReceiverFault = { status: number } | { redirect: string } | { hang: true }
export type Delivery = { url: string; method: string; redirect: string; headers: Record<string, string>; body: string }

/** A stand-in for the product's webhook receiver: records every delivery, answers 204 unless told to fail. */
function createReceiver() {
  const deliveries: Delivery[] = []
  const faults: ReceiverFault[] = []
  return {
    deliveries,
    /** The next `times` deliveries get `fault`. */
    fail(fault: ReceiverFault, times = 1) {
      for (let i = 0; i < times; i++) faults.push(fault)
    },
    async fetch(request: Request): Promise<Response> {
      deliveries.push({
        url: request.url,
        method: request.method,
        redirect: request.redirect,
        headers: Object.fromEntries(request.headers),
        body: await request.text(),
      })
      const fault = faults.shift()
      if (!fault) return new Response(null, { status: 204 })
      if ('hang' in fault) return new Promise<Response>(() => {})
      if ('redirect' in fault) return new Response(null, { status: 302, headers: { location: fault.redirect } })
      return new Response('receiver fault', { status: fault.status })
    },
  }
}

/**
 * A stand-in for the EVENTS producer binding: records what is sent. `fail` makes sends reject;
 * `hang` holds them until `release()`.
 */
export function fakeQueue(options: { fail?: boolean; hang?: boolean } = {}) {
  const sent: { event_id: string }[] = []
  let release = () => {}
  const held = new Promise<void>((resolve) => (release = resolve))
  const send = async (body: { event_id: string }) => {
    if (options.hang) await held
    if (options.fail) throw new Error('queue unavailable')
    sent.push(body)
  }
  const binding = {
    send: vi.fn(send),
    sendBatch: vi.fn(async (messages: { body: { event_id: string } }[]) => {
      for (const m of messages) await send(m.body)
    }),
  }
  return { sent, binding: binding as unknown as Queue, release }
}

/** Deliveries on (WEBHOOK_URL, WEBHOOK_SECRET) with a recording EVENTS queue. */
export function deliveriesOn(queue = fakeQueue()) {
  return { queue, bindings: { WEBHOOK_URL, WEBHOOK_SECRET, EVENTS: queue.binding } satisfies Bindings }
}

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

/** Signs states and tickets with the test STATE_SECRET, as the Worker does: for tests that forge, age or replay them. */
export const testSigner = new TokenSigner(hmacKey(testEnv.STATE_SECRET!))

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
      users: [
        { id: USER_ID, email: 'user@example.com' },
        { id: OTHER_USER_ID, email: 'other@example.com' },
      ],
    },
    signingKey,
  )
  const receiver = createReceiver()
  // The app's governor lives as long as the file: a back-off one test's throttles began would hold
  // up the next. A call with another tier starts its budget over (as a deploy that changes the tier
  // does), so the first call of this test, with the configured tier, starts from nothing.
  await (env as unknown as { QUOTA: DurableObjectNamespace<QuotaGovernor> }).QUOTA.getByName(testEnv.TIKTOK_APP_ID!).snapshot({ qps: 1, qpm: 1, sweepShare: 1 })
  const unexpected: string[] = []
  const outbound: Request[] = []

  vi.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
    const request = new Request(input, init)
    outbound.push(request.clone())
    const host = new URL(request.url).host
    // Any *.supabase.co is the same stand-in: tests that need an empty key cache use a project of their own.
    const standIn =
      host === TIKTOK_HOST ? tiktok.app : host === SUPABASE_HOST || host.endsWith('.supabase.co') ? supabase.app : host === WEBHOOK_HOST ? receiver : undefined
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
  const sleep = vi.spyOn(clock, 'sleep').mockImplementation(async (ms: number) => {
    sleeps.push(ms)
  })

  const logs: string[] = []
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    logs.push(args.map(String).join(' '))
  })

  return {
    /** The test's browser: the binding cookie its last /start set (the one `chooseAdvertiser` sends). */
    browser: { cookie: '' },
    tiktok,
    supabase,
    receiver,
    unexpected,
    outbound,
    logs,
    /** Every `clock.sleep` the Worker asked for, in ms; `sleep` is the spy, to make a wait last. */
    sleeps,
    sleep,
    /** The connection of user `id` (every column of tiktok_connections, each null when not connected), as PostgreSQL renders it. */
    row: async (id: string): Promise<Row> => (await supabase.row(id))!,
    /** Every claim in tiktok_oauth_exchanges, oldest first. */
    exchanges: () => supabase.exchanges(),
    /** Runs SQL as the database owner: for arranging what a test needs (a stale claim, a removed row). */
    sql: (text: string, params?: unknown[]) => database.rows(text, params),
    /** The connection events of `userId`, oldest first, as stored. */
    events: (userId = USER_ID) => database.rows<EventRow>('select * from public.tiktok_connection_events where user_id = $1 order by created_at, id', [userId]),
    /** TikTok API calls whose path ends with `suffix`. */
    tiktokCalls: (suffix: string) => tiktok.requests.filter((r) => r.path.endsWith(suffix)),
    /**
     * `METHOD /path` of every PostgREST call, in order, but the schema check: the Worker makes it once
     * per isolate, so whether a call list has it depends on what ran before (test/schema.test.ts
     * counts it).
     */
    supabaseCalls: () => supabase.requests.filter((r) => r.path !== SCHEMA_CHECK).map((r) => `${r.method} ${r.path}`),
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

/** A row of tiktok_connection_events. */
export type EventRow = {
  id: string
  user_id: string
  type: string
  payload: Record<string, any>
  created_at: string
  delivered_at: string | null
  attempts: number
  last_error: string | null
}

/** Settings or bindings (a rate limiter, a queue) that replace the configured ones for one call. */
export type Bindings = Record<string, string | RateLimit | Queue | undefined>

// What the calls handed to waitUntil, so a test can wait for it.
const background: Promise<unknown>[] = []
/** Waits for everything the calls left running after their answer (the queue sends). */
export async function settled(): Promise<void> {
  while (background.length) await Promise.allSettled(background.splice(0))
}

type WorkerEnv = Parameters<typeof worker.fetch>[1]

// One bindings object per `bindings` given: the same object again is the same isolate.
const isolates = new WeakMap<Bindings, WorkerEnv>()

/**
 * Calls the Worker's own entry point, as the runtime does. `bindings` replaces settings: the env the
 * Worker sees is `env` with them on top, one object per `bindings` object, so passing the same one
 * again is the same isolate (settings checked, keys and clients built, caches warm), and a new one is
 * a new isolate. Without it every call shares the test file's.
 */
export async function call(url: string, init: RequestInit = {}, bindings?: Bindings): Promise<Response> {
  const ctx = createExecutionContext()
  let workerEnv = bindings ? isolates.get(bindings) : (env as WorkerEnv)
  if (!workerEnv) isolates.set(bindings!, (workerEnv = { ...env, ...bindings } as WorkerEnv))
  const response = await worker.fetch(new Request(url, init), workerEnv, ctx)
  background.push(waitOnExecutionContext(ctx))
  return response
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
  if (cookie) h.browser.cookie = cookie
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

/** The binding a state carries (`n`, the SHA-256 of its cookie), read from the documented format. */
export const stateBinding = (state: string): string =>
  (
    JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(state.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')), (ch) => ch.charCodeAt(0)))) as {
      n: string
    }
  ).n

/**
 * POST /oauth/advertiser as the callback page does (or POST /advertiser without a ticket), from the test's browser (its binding cookie, unless
 * `cookie` names another or `null` sends none).
 */
export function chooseAdvertiser(
  h: Harness,
  body: Record<string, unknown>,
  options: { headers?: Record<string, string>; bindings?: Bindings; cookie?: string | null } = {},
): Promise<{ status: number; headers: Headers; body: Record<string, any> }> {
  const cookie = options.cookie === undefined ? h.browser.cookie : options.cookie
  // The callback page's endpoint takes a ticket; the product's takes the user's bearer token.
  return call(
    `${APP_ORIGIN}/api/tiktok/${'ticket' in body ? 'oauth/' : ''}advertiser`,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        origin: APP_ORIGIN,
        ...(cookie ? { cookie: `__Host-tiktok_oauth_binding=${cookie}` } : {}),
        ...options.headers,
      },
      body: JSON.stringify(body),
    },
    options.bindings,
  ).then(async (r) => ({ status: r.status, headers: r.headers, body: (await r.json()) as Record<string, any> }))
}

/** Every secret the Worker holds or receives during a test: none may appear in a response or a log. */
export async function secretsOf(h: Harness, extra: string[] = []): Promise<string[]> {
  const tokens = (await h.sql('select access_token from public.tiktok_connections')).map((r) => r.access_token as string)
  return [testEnv.TIKTOK_APP_SECRET!, testEnv.SUPABASE_SECRET_KEY!, testEnv.STATE_SECRET!, WEBHOOK_SECRET, WEBHOOK_SECRET.slice(6), ...tokens, ...extra]
}

/** After each test: nothing reached an unexpected host, and no secret (or `extra`) reached a log line. */
export async function expectNoLeaks(h: Harness, extra: string[] = []): Promise<void> {
  expect(h.unexpected).toEqual([])
  const logs = h.logs.join('\n')
  for (const secret of await secretsOf(h, extra)) expect(logs).not.toContain(secret)
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
    {
      ...init,
      headers: { authorization: `Bearer ${token}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...(init.headers as Record<string, string>) },
    },
    init.bindings,
  )
  return { status: response.status, body: (await response.json()) as Record<string, any> }
}

/**
 * Upstreams that never answer, on a fake clock: `request` runs until each `held` stand-in has it, and
 * each time the clock moves past UPSTREAM_TIMEOUT_MS, so the deadline fires with no real waiting.
 * `request` must pass settings (`call(..., bindings)`): a fake timer may only resume this context.
 */
export async function pastDeadlines<T>(request: () => Promise<T>, ...held: ReturnType<typeof hold>[]): Promise<T> {
  vi.useFakeTimers()
  try {
    const answer = request()
    for (const stalled of held) {
      await stalled.reached
      await vi.advanceTimersByTimeAsync(Number(testEnv.UPSTREAM_TIMEOUT_MS))
    }
    return await answer
  } finally {
    vi.useRealTimers()
  }
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
