import type { Services } from '../services'
import type { PendingEvent } from '../supabase'

/** An event not delivered this long after its change lost its enqueue, or is being retried. */
const OLDER_THAN = '5 minutes'
const SCAN = 1000
/** Per run, so a receiver back from an outage is not flooded with the whole backlog at once. */
const MAX_PER_RUN = 200
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
export async function redeliverEvents(s: Services): Promise<number> {
  // No receiver: the events are meant to stay in the table.
  if (!s.events.delivering) return 0
  if (!s.config.eventsQueue) {
    s.log.warn('events.redeliver', { outcome: 'no_binding' })
    return 0
  }
  const pending = await s.db.eventsToDeliver(OLDER_THAN, SCAN)
  const now = s.clock.now()
  const due = pending.filter((event) => isDue(event, now)).slice(0, MAX_PER_RUN)
  await s.events.enqueueAgain(due.map((event) => event.id))
  s.log[due.length ? 'warn' : 'info']('events.redeliver', { outcome: 'ok', undelivered: pending.length, sent: due.length })
  return due.length
}
