import type { EventMessage } from './events/outbox'
import { webhookKeyBytes } from './events/sign'
import { parseKeySpec } from './token-crypto'
import type { ConfigProblem } from './health-answer'
import { isPrivateHost } from './hosts'
import { SANDBOX_SECRETS } from './sandbox-secrets'
import type { QuotaGovernor } from './quota/governor'
import { type QuotaEnv, type QuotaSettings, readQuotaSettings } from './quota/settings'
import { parseServiceKeys } from './service-keys'

/**
 * The Worker's bindings: `Env` comes from `wrangler types` (vars, the ASSETS, rate limit and EVENTS
 * bindings); the secrets are declared here because they never appear in wrangler.toml.
 */
export type Bindings = Env &
  QuotaEnv & {
    /** TikTok app secret. `wrangler secret put TIKTOK_APP_SECRET`. */
    TIKTOK_APP_SECRET?: string
    /** Supabase server key that calls the connector's functions: `sb_secret_...` or a legacy service_role JWT. */
    SUPABASE_SECRET_KEY?: string
    /** Legacy HS256 JWT secret; only for projects whose user tokens are still HS256. */
    SUPABASE_JWT_SECRET?: string
    /** HMAC key for the OAuth `state`, at least 32 bytes. */
    STATE_SECRET?: string
    /** Optional upper bound for one upstream call, in milliseconds (default 8000). */
    UPSTREAM_TIMEOUT_MS?: string
    /** Optional AES-256-GCM keys for the stored token: `<id>:<base64 32 bytes>[,<old id>:<old key>]`. */
    TOKEN_ENCRYPTION_KEY?: string
    /** Optional receiver of the connection events (Standard Webhooks); empty: events stay in the table. */
    WEBHOOK_URL?: string
    /** Signing secret for the deliveries, `whsec_<base64 of 24 to 64 random bytes>`; required with WEBHOOK_URL. */
    WEBHOOK_SECRET?: string
    /** Optional: connections the sweep checks at TikTok at the same time (default 2, at most 10). */
    SWEEP_CONCURRENCY?: string
    /** Optional: connections the sweep checks per cron run (default 200, at most 1000). */
    SWEEP_MAX_PER_RUN?: string
    /** Optional: seconds before a failed delivery's first retry, doubling after (default 30). */
    EVENTS_RETRY_SECONDS?: string
    /**
     * `development` only in `sandbox/dev.env`: allows the committed sandbox secrets and a webhook
     * receiver on this machine. Anything else (or nothing) is production.
     */
    ENVIRONMENT?: string
    /** `true` lets Supabase anonymous users (`is_anonymous`) connect; default `false`. */
    ALLOW_ANONYMOUS_USERS?: string
    /** The product's backends' keys for the proxy: `<id>:<key>[,<id>:<key>…]`, each key at least 32 bytes. */
    SERVICE_KEYS?: string
  }

export type Config = {
  /** The bindings, checked with the settings. */
  userRateLimit: RateLimit
  clientRateLimit: RateLimit
  /** Undefined when a deploy dropped it: only the events' fast path is lost (the cron sends them). */
  eventsQueue: Queue<EventMessage> | undefined
  /** The app's quota governor (one Durable Object per app) and the tier it keeps. */
  quotaGovernor: DurableObjectNamespace<QuotaGovernor>
  quota: QuotaSettings
  tiktokAppId: string
  tiktokAppSecret: string
  tiktokAuthUrl: string
  tiktokApiBase: string
  supabaseUrl: string
  supabaseSecretKey: string
  supabaseJwtSecret: string | undefined
  stateSecret: string
  allowedOrigins: readonly string[]
  upstreamTimeoutMs: number
  /** The key setting, checked; undefined stores tokens in plaintext. */
  tokenEncryptionKeys: string | undefined
  /** Undefined: events are written to the table and never sent. */
  webhook: { url: string; secret: string } | undefined
  sweepConcurrency: number
  sweepMaxPerRun: number
  /** The first retry's wait for a failed delivery; each next one doubles. */
  eventsRetrySeconds: number
  /** `ENVIRONMENT=development`: the sandbox's rules for secrets and the webhook receiver. */
  development: boolean
  allowAnonymousUsers: boolean
  /** The proxy's callers; empty: the proxy refuses every call. */
  serviceKeys: { id: string; key: string }[]
}

const MIN_STATE_SECRET_BYTES = 32
const DEFAULT_TIMEOUT_MS = 8000
// Two checkers at one TikTok call a second each, 200 a run: a fifth of the app's quota (docs/operations.md).
const DEFAULT_SWEEP_CONCURRENCY = 2
const DEFAULT_SWEEP_MAX_PER_RUN = 200
const DEFAULT_EVENTS_RETRY_SECONDS = 30

const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && !url.username && !url.password
  } catch {
    return false
  }
}

/** An origin is exactly `scheme://host[:port]`, the form `new URL(...).origin` produces. */
export const isOrigin = (value: string): boolean => isHttpUrl(value) && new URL(value).origin === value

const trimSlash = (value: string): string => value.replace(/\/+$/, '')

// Fewer distinct bytes than this is a placeholder or a typo (all zeros, one letter repeated), never
// the output of a random generator: 32 random bytes hold about 30 distinct values.
const MIN_DISTINCT_BYTES = 8
const distinctBytes = (bytes: Uint8Array): number => new Set(bytes).size
/** The keys of a SERVICE_KEYS setting, whatever their ids; none when it does not parse. */
const serviceKeysIn = (spec: string): string[] => {
  try {
    return parseServiceKeys(spec).map((entry) => entry.key)
  } catch {
    return []
  }
}
const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean => !!a && !!b && a.length === b.length && a.every((byte, i) => byte === b[i])
const WEAK_SECRET = `has fewer than ${MIN_DISTINCT_BYTES} distinct bytes; make a random one`

/**
 * Why `value` cannot receive the connection events, or undefined. The payloads name people's ad
 * accounts and the Worker POSTs them wherever this points: https only, and never to this machine,
 * a private network or a cloud metadata host, which a deployment's setting could otherwise aim the
 * Worker at. Development also allows this machine, plain http included (the sandbox's receiver).
 */
function webhookUrlProblem(value: string, development: boolean): string | undefined {
  const rule = development
    ? 'must be an https URL, or http to this machine (127.0.0.1, localhost), without a user name or password'
    : 'must be an https URL to a public host (not localhost, *.local, *.internal or a loopback, private or link-local address; those only with ENVIRONMENT=development), without a user name or password'
  if (!isHttpUrl(value)) return rule
  // The WHATWG parser has already turned 127.1, 2130706433 and 0x7f.0.0.1 into 127.0.0.1.
  const { protocol, hostname } = new URL(value)
  const host = isPrivateHost(hostname)
  if (development) return protocol === 'https:' || host === 'loopback' ? undefined : rule
  return protocol === 'https:' && !host ? undefined : rule
}

/**
 * Reads and checks every setting once. Returns the problems by name only: values never leave here.
 */
export function readConfig(env: Bindings): { config: Config; problems: [] } | { config: undefined; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const missing = (name: string, reason = 'not set') => problems.push({ name, problem: 'missing', reason })
  const malformed = (name: string, reason: string) => problems.push({ name, problem: 'malformed', reason })
  const required = (name: keyof Bindings, check?: { ok: (v: string) => boolean; expected: string }): string => {
    const raw = env[name]
    const value = typeof raw === 'string' ? raw.trim() : ''
    if (!value) missing(name)
    else if (check && !check.ok(value)) malformed(name, check.expected)
    return value
  }
  const httpUrl = { ok: isHttpUrl, expected: 'must be an http(s) URL without a user name or password' }

  const tiktokAppId = required('TIKTOK_APP_ID')
  const tiktokAppSecret = required('TIKTOK_APP_SECRET')
  const tiktokAuthUrl = required('TIKTOK_AUTH_URL', httpUrl)
  const tiktokApiBase = trimSlash(required('TIKTOK_API_BASE', httpUrl))
  const supabaseUrl = trimSlash(required('SUPABASE_URL', httpUrl))
  const supabaseSecretKey = required('SUPABASE_SECRET_KEY')
  const development = env.ENVIRONMENT?.trim() === 'development'
  const stateSecret = required('STATE_SECRET', {
    ok: (v) => new TextEncoder().encode(v).byteLength >= MIN_STATE_SECRET_BYTES,
    expected: `must be at least ${MIN_STATE_SECRET_BYTES} bytes (make one: openssl rand -base64 48)`,
  })
  if (stateSecret && problems.every((p) => p.name !== 'STATE_SECRET') && distinctBytes(new TextEncoder().encode(stateSecret)) < MIN_DISTINCT_BYTES)
    malformed('STATE_SECRET', WEAK_SECRET)
  // The committed sandbox values, by name, refused where they would guard real connections: compared
  // as the Worker uses them (trimmed; the webhook secret by its key bytes; a service key by its key,
  // whatever its id or the entries beside it), so no spelling passes.
  if (!development)
    for (const [name, committed] of Object.entries(SANDBOX_SECRETS)) {
      const raw = env[name as keyof Bindings]
      const value = typeof raw === 'string' ? raw.trim() : ''
      const same =
        name === 'WEBHOOK_SECRET'
          ? sameBytes(webhookKeyBytes(value), webhookKeyBytes(committed))
          : name === 'SERVICE_KEYS'
            ? serviceKeysIn(value).some((key) => serviceKeysIn(committed).includes(key))
            : value === committed
      if (same) malformed(name, 'is the committed sandbox value, allowed only with ENVIRONMENT=development; make your own')
    }
  const origins = required('ALLOWED_ORIGINS', {
    ok: (v) => v.split(',').every((o) => isOrigin(trimSlash(o.trim()))),
    expected: 'must be comma-separated origins, each scheme://host[:port] with no path, e.g. https://app.example.com',
  })
  const allowedOrigins = origins ? origins.split(',').map((o) => trimSlash(o.trim())) : []

  const integer = (name: 'UPSTREAM_TIMEOUT_MS' | 'SWEEP_CONCURRENCY' | 'SWEEP_MAX_PER_RUN' | 'EVENTS_RETRY_SECONDS', fallback: number, max: number): number => {
    const raw = env[name]?.trim()
    if (!raw) return fallback
    const value = Number(raw)
    if (Number.isInteger(value) && value >= 1 && value <= max) return value
    malformed(name, `must be a whole number from 1 to ${max}`)
    return fallback
  }
  const upstreamTimeoutMs = integer('UPSTREAM_TIMEOUT_MS', DEFAULT_TIMEOUT_MS, 30_000)
  const sweepConcurrency = integer('SWEEP_CONCURRENCY', DEFAULT_SWEEP_CONCURRENCY, 10)
  // tiktok_sweep_batch hands out at most 1000 connections a call.
  const sweepMaxPerRun = integer('SWEEP_MAX_PER_RUN', DEFAULT_SWEEP_MAX_PER_RUN, 1000)
  // The sandbox sets 1, so `npm run dev` shows retries in seconds instead of minutes.
  const eventsRetrySeconds = integer('EVENTS_RETRY_SECONDS', DEFAULT_EVENTS_RETRY_SECONDS, 900)

  const tokenEncryptionKeys = env.TOKEN_ENCRYPTION_KEY?.trim() || undefined
  if (tokenEncryptionKeys) {
    try {
      if (parseKeySpec(tokenEncryptionKeys).some(([, raw]) => distinctBytes(raw) < MIN_DISTINCT_BYTES))
        malformed('TOKEN_ENCRYPTION_KEY', `has a key with fewer than ${MIN_DISTINCT_BYTES} distinct bytes; make each one random`)
    } catch {
      // Not the thrown message: it may quote the setting.
      malformed('TOKEN_ENCRYPTION_KEY', 'must be <key id>:<base64 of 32 bytes>, comma-separated with unique ids, newest first')
    }
  }

  // A secret without a receiver is harmless; a receiver without a valid secret would get unsigned or
  // unverifiable deliveries, so it is a problem like any other malformed setting.
  const webhookUrl = env.WEBHOOK_URL?.trim() || undefined
  const webhookSecret = env.WEBHOOK_SECRET?.trim() || undefined
  if (webhookUrl) {
    const problem = webhookUrlProblem(webhookUrl, development)
    if (problem) malformed('WEBHOOK_URL', problem)
  }
  const webhookKey = webhookSecret ? webhookKeyBytes(webhookSecret) : undefined
  if (webhookSecret && !webhookKey) malformed('WEBHOOK_SECRET', 'must be whsec_ followed by padded base64 of 24 to 64 bytes')
  else if (webhookKey && distinctBytes(webhookKey) < MIN_DISTINCT_BYTES) malformed('WEBHOOK_SECRET', `has a key that ${WEAK_SECRET}`)
  else if (webhookUrl && !webhookSecret) missing('WEBHOOK_SECRET', 'required when WEBHOOK_URL is set')

  let serviceKeys: { id: string; key: string }[] = []
  const serviceKeySpec = env.SERVICE_KEYS?.trim()
  if (serviceKeySpec) {
    try {
      serviceKeys = parseServiceKeys(serviceKeySpec)
    } catch (error) {
      // The parser's reasons name key ids and rules, never a key.
      malformed('SERVICE_KEYS', `must be <id>:<key> pairs, comma-separated: ${(error as Error).message}`)
    }
  }

  const anonymous = env.ALLOW_ANONYMOUS_USERS?.trim() || 'false'
  if (anonymous !== 'true' && anonymous !== 'false') malformed('ALLOW_ANONYMOUS_USERS', 'must be true or false')

  // Declared in wrangler.toml; a deploy that drops them would leave every endpoint unthrottled.
  const limiter = (name: 'USER_RATE_LIMIT' | 'CLIENT_RATE_LIMIT'): RateLimit => {
    const binding = env[name] as Partial<RateLimit> | undefined
    if (typeof binding?.limit !== 'function') missing(name, 'the [[ratelimits]] binding declared in wrangler.toml')
    return binding as RateLimit
  }
  const userRateLimit = limiter('USER_RATE_LIMIT')
  const clientRateLimit = limiter('CLIENT_RATE_LIMIT')
  const governor = env.QUOTA as Partial<DurableObjectNamespace<QuotaGovernor>> | undefined
  if (typeof governor?.getByName !== 'function') missing('QUOTA', 'the [[durable_objects.bindings]] QuotaGovernor declared in wrangler.toml')
  const quotaSettings = readQuotaSettings(env)
  problems.push(...quotaSettings.problems)
  const queue = env.EVENTS as Partial<Queue<EventMessage>> | undefined
  const eventsQueue = typeof queue?.send === 'function' && typeof queue.sendBatch === 'function' ? (queue as Queue<EventMessage>) : undefined

  if (problems.length > 0) return { config: undefined, problems }
  return {
    config: {
      userRateLimit,
      clientRateLimit,
      eventsQueue,
      quotaGovernor: governor as DurableObjectNamespace<QuotaGovernor>,
      quota: quotaSettings.settings!,
      tiktokAppId,
      tiktokAppSecret,
      tiktokAuthUrl,
      tiktokApiBase,
      supabaseUrl,
      supabaseSecretKey,
      supabaseJwtSecret: env.SUPABASE_JWT_SECRET?.trim() || undefined,
      stateSecret,
      allowedOrigins,
      upstreamTimeoutMs,
      tokenEncryptionKeys,
      webhook: webhookUrl && webhookSecret ? { url: webhookUrl, secret: webhookSecret } : undefined,
      sweepConcurrency,
      sweepMaxPerRun,
      eventsRetrySeconds,
      development,
      allowAnonymousUsers: anonymous === 'true',
      serviceKeys,
    },
    problems: [],
  }
}

/** The configured secrets' values: none may appear in a log line (see `secretForms`). */
export function secretValues(env: Bindings): string[] {
  const values = [env.TIKTOK_APP_SECRET, env.SUPABASE_SECRET_KEY, env.SUPABASE_JWT_SECRET, env.STATE_SECRET, env.WEBHOOK_SECRET]
  // Each encryption key on its own too: one of several rotated keys could surface alone.
  values.push(env.TOKEN_ENCRYPTION_KEY, ...(env.TOKEN_ENCRYPTION_KEY?.split(/[,:]/) ?? []))
  // The webhook secret's key part alone, and the receiver's URL, which may carry a credential of its own.
  values.push(env.WEBHOOK_SECRET?.trim().replace(/^whsec_/, ''), env.WEBHOOK_URL?.trim())
  // Each service key on its own; the setting whole too.
  values.push(env.SERVICE_KEYS, ...(env.SERVICE_KEYS?.split(',').map((pair) => pair.slice(pair.indexOf(':') + 1).trim()) ?? []))
  return values.filter((v): v is string => !!v)
}
