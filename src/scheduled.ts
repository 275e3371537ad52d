import { backgroundLog, clientsFor } from './clients'
import { type Bindings, checkedConfig } from './env'
import { enqueueEvent } from './events/enqueue'
import { redeliverEvents } from './events/redeliver'
import { sweepConnections } from './sweep'

/**
 * The cron (wrangler.toml `[triggers]`): the revocation sweep, the re-enqueue of undelivered events
 * and the pruning of delivered ones. Three independent parts, run side by side: one failing, or the
 * sweep taking minutes, holds up neither of the others. Not reachable over HTTP in production.
 */
export async function scheduled(_controller: ScheduledController, env: Bindings, ctx: ExecutionContext): Promise<void> {
  const log = backgroundLog(env, 'cron')
  const { config, problems } = checkedConfig(env)
  if (!config) {
    log.error('config.invalid', { settings: problems })
    return
  }
  const { db, tiktok } = clientsFor(config, log)
  const part = (name: string, work: () => Promise<unknown>) =>
    work().catch((error: unknown) => log.error('cron.part', { part: name, outcome: 'error', error }))
  await Promise.all([
    part('sweep', () => sweepConnections({ config, db, tiktok, log, enqueue: (id) => enqueueEvent(ctx, env, config, log, id) })),
    part('redeliver', () => redeliverEvents(env, config, db, log)),
    part('prune', async () => log.info('events.prune', { outcome: 'ok', deleted: await db.pruneEvents() })),
  ])
}
