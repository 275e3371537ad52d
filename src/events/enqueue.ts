import type { Bindings, Config } from '../env'
import type { Logger } from '../log'

/** What the EVENTS queue carries: only the id. The event itself stays in the table, the one truth. */
export type EventMessage = { event_id: string }

/** The EVENTS producer; undefined when a deploy dropped the binding (only the fast path is lost). */
export const eventsQueue = (env: Bindings): Queue<EventMessage> | undefined => {
  const queue = env.EVENTS as Partial<Queue<EventMessage>> | undefined
  return typeof queue?.send === 'function' && typeof queue.sendBatch === 'function' ? (queue as Queue<EventMessage>) : undefined
}

/**
 * Hands a committed event to the queue without holding up the caller: the send runs under
 * `waitUntil`, and a failed send is only logged, because the cron sends every event still undelivered
 * after a few minutes. Nothing is sent without a receiver: the event stays in the table for products
 * that read it.
 */
export function enqueueEvent(ctx: Pick<ExecutionContext, 'waitUntil'>, env: Bindings, config: Config, log: Logger, eventId: string | null | undefined): void {
  if (!eventId || !config.webhook) return
  const queue = eventsQueue(env)
  if (!queue) {
    log.warn('events.enqueue', { outcome: 'no_binding', event_id: eventId })
    return
  }
  const sending = Promise.resolve()
    .then(() => queue.send({ event_id: eventId }))
    .then(
      () => log.info('events.enqueue', { outcome: 'ok', event_id: eventId }),
      (error: unknown) => log.warn('events.enqueue', { outcome: 'error', event_id: eventId, error }),
    )
  ctx.waitUntil(sending)
}
