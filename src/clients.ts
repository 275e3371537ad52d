import { type Bindings, type Config, secretsOf } from './env'
import { Logger } from './log'
import { SupabaseStore } from './supabase'
import { TikTokClient } from './tiktok'

/** The upstream clients for one unit of work: a request, a queue batch or a cron run. */
export function clientsFor(config: Config, log: Logger): { db: SupabaseStore; tiktok: TikTokClient } {
  return {
    db: new SupabaseStore({ url: config.supabaseUrl, secretKey: config.supabaseSecretKey, timeoutMs: config.upstreamTimeoutMs }, log),
    tiktok: new TikTokClient(
      { appId: config.tiktokAppId, appSecret: config.tiktokAppSecret, apiBase: config.tiktokApiBase, timeoutMs: config.upstreamTimeoutMs },
      log,
    ),
  }
}

/**
 * The logger of work no request started (`queue:<id>`, `cron:<id>`): its lines carry that id where a
 * request's carry the request id, and the same redaction.
 */
export const backgroundLog = (env: Bindings, kind: 'queue' | 'cron'): Logger => new Logger(`${kind}:${crypto.randomUUID()}`, [], secretsOf(env))
