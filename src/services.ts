import { type Clock, clock } from './clock'
import { type Bindings, type Config, readConfig, secretValues } from './env'
import type { ConfigProblem } from './health-answer'
import { EventOutbox } from './events/outbox'
import { webhookSigningKey } from './events/sign'
import { SupabaseKeys } from './jwks'
import { Logger, secretForms } from './log'
import { Quota } from './quota/client'
import { ServiceKeys } from './service-keys'
import { hmacKey, TokenSigner } from './signed'
import { StoredTokens } from './stored-token'
import type { SchemaStatus } from './schema'
import { postgrestClient, SchemaCheck, SupabaseStore } from './supabase'
import { TikTokClient } from './tiktok'
import { importTokenKeys } from './token-crypto'

/**
 * Everything a unit of work (a request, a queue batch, a cron run) needs, built by `compose` from the
 * bindings: the checked config, the logger, the clock, the two upstream clients, the events' outbox,
 * the signer of states and tickets, the stored token's encryption, and the user verification keys.
 */
export type Services = {
  config: Config
  log: Logger
  clock: Clock
  db: SupabaseStore
  tiktok: TikTokClient
  events: EventOutbox
  signer: TokenSigner
  tokens: StoredTokens
  userKeys: { jwks: SupabaseKeys; legacy: Promise<CryptoKey> | undefined }
  webhookKey: Promise<CryptoKey> | undefined
  /** Who may call the proxy. */
  serviceKeys: ServiceKeys
  /** Keeps work running after the answer (the runtime's `waitUntil`). */
  background: (work: Promise<unknown>) => void
}

/** What lives as long as the isolate: derived once from one bindings object, never per request. */
type Isolate = {
  checked: ReturnType<typeof readConfig>
  secretForms: string[]
  parts?: Pick<Services, 'signer' | 'tokens' | 'userKeys' | 'webhookKey' | 'serviceKeys'> & {
    postgrest: ReturnType<typeof postgrestClient>
    schema: SchemaCheck
  }
}

// The bindings object lives as long as the isolate: its settings are checked, and its keys and
// clients built, once. The one cache of the Worker; a test that passes other bindings gets its own.
const isolates = new WeakMap<object, Isolate>()

function isolateOf(env: Bindings): Isolate {
  let isolate = isolates.get(env)
  if (!isolate) {
    isolate = { checked: readConfig(env), secretForms: secretForms(secretValues(env)) }
    isolates.set(env, isolate)
  }
  return isolate
}

const partsOf = (isolate: Isolate, config: Config): NonNullable<Isolate['parts']> => {
  if (isolate.parts) return isolate.parts
  const postgrest = postgrestClient({ url: config.supabaseUrl, secretKey: config.supabaseSecretKey, timeoutMs: config.upstreamTimeoutMs })
  return (isolate.parts = {
    signer: new TokenSigner(hmacKey(config.stateSecret)),
    tokens: new StoredTokens(config.tokenEncryptionKeys ? importTokenKeys(config.tokenEncryptionKeys) : undefined),
    userKeys: {
      jwks: new SupabaseKeys(config.supabaseUrl, config.upstreamTimeoutMs),
      legacy: config.supabaseJwtSecret ? hmacKey(config.supabaseJwtSecret) : undefined,
    },
    webhookKey: config.webhook ? webhookSigningKey(config.webhook.secret) : undefined,
    serviceKeys: new ServiceKeys(config.serviceKeys),
    postgrest,
    schema: new SchemaCheck(postgrest),
  })
}

/** The settings and their problems, checked once per isolate (health reads them without building anything). */
export const checkedConfig = (env: Bindings): ReturnType<typeof readConfig> => isolateOf(env).checked

/**
 * Whether the database holds this Worker's schema, for health (once per isolate while it does):
 * `unknown` when the settings do not allow asking, or the database did not answer.
 */
export async function checkedSchema(env: Bindings, log: Logger): Promise<SchemaStatus | 'unknown'> {
  const isolate = isolateOf(env)
  const { config } = isolate.checked
  if (!config) return 'unknown'
  return partsOf(isolate, config)
    .schema.status(log)
    .catch(() => 'unknown' as const)
}

/**
 * A logger whose lines carry `id` (a request id, `queue:<uuid>`, `cron:<uuid>`) and `context`, with
 * every configured secret registered for redaction.
 */
export const loggerFor = (env: Bindings, id: string, context: Record<string, unknown> = {}): Logger => new Logger(id, [], isolateOf(env).secretForms, context)

/**
 * The composition root, for `fetch`, `queue` and `scheduled` alike. With a missing or malformed
 * setting it builds nothing and logs `config.invalid` with the problems (names and rules, never
 * values); the caller answers as its entry point must.
 */
export function compose(
  env: Bindings,
  ctx: Pick<ExecutionContext, 'waitUntil'>,
  log: Logger,
): { services: Services; problems?: undefined } | { services?: undefined; problems: ConfigProblem[] } {
  const isolate = isolateOf(env)
  const { config, problems } = isolate.checked
  if (!config) {
    log.error('config.invalid', { settings: problems })
    return { problems }
  }
  const { postgrest, schema, ...parts } = partsOf(isolate, config)
  const background = (work: Promise<unknown>) => ctx.waitUntil(work)
  const events = new EventOutbox({ queue: config.eventsQueue, delivering: !!config.webhook, background }, log)
  const quota = new Quota(
    { binding: config.quotaGovernor, appId: config.tiktokAppId, priority: 'interactive', settings: config.quota },
    { log, sleep: (ms) => clock.sleep(ms) },
  )
  const tiktok = new TikTokClient(
    {
      appId: config.tiktokAppId,
      appSecret: config.tiktokAppSecret,
      apiBase: config.tiktokApiBase,
      timeoutMs: config.upstreamTimeoutMs,
    },
    log,
    clock,
    quota,
  )
  return { services: { config, log, clock, db: new SupabaseStore(postgrest, log, events, schema), tiktok, events, background, ...parts } }
}
