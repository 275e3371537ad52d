import type { Bindings, Config } from '../env'
import type { Logger } from '../log'
import type { PendingEvent, SupabaseStore } from '../supabase'
import { eventsQueue } from './enqueue'

/** An event not delivered this long after its change lost its enqueue, or is being retried. */
const OLDER_THAN = '5 minutes'
const SCAN = 1000
/** Per run, so a receiver back from an outage is not flooded with the whole backlog at once. */
const MAX_PER_RUN = 200
// Queues takes at most 100 messages per sendBatch.
const SEND_BATCH = 100
/** wrangler.toml's max_retries = 5: one message makes six attempts. */
const ATTEMPTS_PER_MESSAGE = 6
/** Six attempts with the consumer's back-off (30 s … 480 s) take about 16 minutes. */
const CYCLE_MS = 20 * 60_000

/**
 * Whether the cron should send an undelivered event again. Never attempted: its enqueue was lost, send
 * it now. Attempted: it is sent again once its last message has surely finished its six attempts,
 * at 20 min, 1 h, 2 h 20 min, 5 h, … after the change (each gap twice the last), so a receiver that is
 * down gets fewer and fewer calls rather than six every quarter of an hour per event.
 */
export function isDue(event: Pick<PendingEvent, 'attempts' | 'created_at'>, now: number): boolean {
  if (event.attempts <= 0) return true
  const messages = Math.ceil(event.attempts / ATTEMPTS_PER_MESSAGE)
  return now - Date.parse(event.created_at) >= CYCLE_MS * (2 ** Math.min(messages, 30) - 1)
}

/** Sends the undelivered events that are due to the queue again; answers how many. */
export async function redeliverEvents(env: Bindings, config: Config, db: SupabaseStore, log: Logger, now = Date.now()): Promise<number> {
  // No receiver: the events are meant to stay in the table.
  if (!config.webhook) return 0
  const queue = eventsQueue(env)
  if (!queue) {
    log.warn('events.redeliver', { outcome: 'no_binding' })
    return 0
  }
  const pending = await db.eventsToDeliver(OLDER_THAN, SCAN)
  const due = pending.filter((event) => isDue(event, now)).slice(0, MAX_PER_RUN)
  for (let i = 0; i < due.length; i += SEND_BATCH)
    await queue.sendBatch(due.slice(i, i + SEND_BATCH).map((event) => ({ body: { event_id: event.id } })))
  log[due.length ? 'warn' : 'info']('events.redeliver', { outcome: 'ok', undelivered: pending.length, sent: due.length })
  return due.length
}
