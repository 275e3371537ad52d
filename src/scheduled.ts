import type { Bindings } from './env'
import { redeliverEvents } from './events/redeliver'
import { compose, loggerFor } from './services'
import { sweepConnections } from './sweep'

/**
 * The cron (wrangler.toml `[triggers]`): the revocation sweep, the re-enqueue of undelivered events
 * and the pruning of delivered ones. Three independent parts, run side by side: one failing, or the
 * sweep taking minutes, holds up neither of the others. Not reachable over HTTP in production.
 */
export async function scheduled(_controller: ScheduledController, env: Bindings, ctx: ExecutionContext): Promise<void> {
  const log = loggerFor(env, `cron:${crypto.randomUUID()}`)
  const { services } = compose(env, ctx, log)
  if (!services) return
  const part = (name: string, work: () => Promise<unknown>) => work().catch((error: unknown) => log.error('cron.part', { part: name, outcome: 'error', error }))
  await Promise.all([
    part('sweep', () => sweepConnections(services)),
    part('redeliver', () => redeliverEvents(services)),
    part('prune', async () => log.info('events.prune', { outcome: 'ok', deleted: await services.db.pruneEvents() })),
  ])
}
