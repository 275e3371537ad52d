import { importTokenKeys } from './token-crypto'

/**
 * The Worker's bindings: `Env` comes from `wrangler types` (vars and the ASSETS binding); the
 * secrets are declared here because they never appear in wrangler.toml.
 */
export type Bindings = Env & {
  /** TikTok app secret. `wrangler secret put TIKTOK_APP_SECRET`. */
  TIKTOK_APP_SECRET?: string
  /** Supabase server key that may update `user_accounts`: `sb_secret_...` or a legacy service_role JWT. */
  SUPABASE_SECRET_KEY?: string
  /** Legacy HS256 JWT secret; only for projects whose user tokens are still HS256. */
  SUPABASE_JWT_SECRET?: string
  /** HMAC key for the OAuth `state`, at least 32 bytes. */
  STATE_SECRET?: string
  /** Optional upper bound for one upstream call, in milliseconds (default 8000). */
  UPSTREAM_TIMEOUT_MS?: string
  /** Optional AES-256-GCM keys for the stored token: `<id>:<base64 32 bytes>[,<old id>:<old key>]`. */
  TOKEN_ENCRYPTION_KEY?: string
}

export type Config = {
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
}

export type ConfigProblem = { name: string; problem: 'missing' | 'malformed' }

const MIN_STATE_SECRET_BYTES = 32
const DEFAULT_TIMEOUT_MS = 8000

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

/**
 * Reads and checks every setting once. Returns the problems by name only: values never leave here.
 */
export function readConfig(env: Bindings): { config: Config; problems: [] } | { config: undefined; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = []
  const required = (name: keyof Bindings, check?: (v: string) => boolean): string => {
    const raw = env[name]
    const value = typeof raw === 'string' ? raw.trim() : ''
    if (!value) problems.push({ name, problem: 'missing' })
    else if (check && !check(value)) problems.push({ name, problem: 'malformed' })
    return value
  }

  const tiktokAppId = required('TIKTOK_APP_ID')
  const tiktokAppSecret = required('TIKTOK_APP_SECRET')
  const tiktokAuthUrl = required('TIKTOK_AUTH_URL', isHttpUrl)
  const tiktokApiBase = trimSlash(required('TIKTOK_API_BASE', isHttpUrl))
  const supabaseUrl = trimSlash(required('SUPABASE_URL', isHttpUrl))
  const supabaseSecretKey = required('SUPABASE_SECRET_KEY')
  const stateSecret = required(
    'STATE_SECRET',
    (v) => new TextEncoder().encode(v).byteLength >= MIN_STATE_SECRET_BYTES,
  )
  const origins = required('ALLOWED_ORIGINS', (v) =>
    v.split(',').every((o) => isOrigin(trimSlash(o.trim()))),
  )
  const allowedOrigins = origins ? origins.split(',').map((o) => trimSlash(o.trim())) : []

  let upstreamTimeoutMs = DEFAULT_TIMEOUT_MS
  if (env.UPSTREAM_TIMEOUT_MS?.trim()) {
    upstreamTimeoutMs = Number(env.UPSTREAM_TIMEOUT_MS)
    if (!Number.isInteger(upstreamTimeoutMs) || upstreamTimeoutMs < 1 || upstreamTimeoutMs > 30_000) {
      problems.push({ name: 'UPSTREAM_TIMEOUT_MS', problem: 'malformed' })
    }
  }

  const tokenEncryptionKeys = env.TOKEN_ENCRYPTION_KEY?.trim() || undefined
  if (tokenEncryptionKeys) {
    try {
      // Parsed and imported here, once per setting text: sealing and opening find the keys ready. A
      // failed import surfaces there, where the promise is awaited.
      importTokenKeys(tokenEncryptionKeys).catch(() => undefined)
    } catch {
      problems.push({ name: 'TOKEN_ENCRYPTION_KEY', problem: 'malformed' })
    }
  }

  // Declared in wrangler.toml; a deploy that drops them would leave every endpoint unthrottled.
  for (const name of ['USER_RATE_LIMIT', 'CLIENT_RATE_LIMIT'] as const) {
    if (typeof (env[name] as Partial<RateLimit> | undefined)?.limit !== 'function') problems.push({ name, problem: 'missing' })
  }

  if (problems.length > 0) return { config: undefined, problems }
  return {
    config: {
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
    },
    problems: [],
  }
}

// The env object lives as long as the isolate: its settings are checked once, not per request.
const checked = new WeakMap<object, ReturnType<typeof readConfig>>()

/** `readConfig`, once per env object. */
export function checkedConfig(env: Bindings): ReturnType<typeof readConfig> {
  let result = checked.get(env)
  if (!result) {
    result = readConfig(env)
    checked.set(env, result)
  }
  return result
}

/** Hono's environment for every route: the bindings plus what the first middleware prepares. */
export type AppEnv = {
  Bindings: Bindings
  Variables: {
    requestId: string
    log: import('./log').Logger
    config: Config
    /** Set by `requireOrigin`. */
    origin: string
    /** Set by `requireUser`: the verified Supabase user id. */
    userId: string
    /** Set by `withClients`. */
    db: import('./supabase').SupabaseStore
    tiktok: import('./tiktok').TikTokClient
  }
}
