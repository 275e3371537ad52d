import type { Logger } from '../log'

/** What the EVENTS queue carries: only the id. The event itself stays in the table, the one truth. */
export type EventMessage = { event_id: string }

// Queues takes at most 100 messages per sendBatch.
const SEND_BATCH = 100

/**
 * The events' fast path: the store hands it the id of every event a committed change wrote, and it
 * queues the id without holding up the caller (the send runs under `waitUntil`). A failed send is
 * only logged: the cron sends every event still undelivered after a few minutes. Without a receiver
 * nothing is sent: the events stay in the table for products that read it.
 */
export class EventOutbox {
  readonly #queue: Queue<EventMessage> | undefined
  readonly #delivering: boolean
  readonly #background: (work: Promise<unknown>) => void
  readonly #log: Logger

  constructor(options: { queue: Queue<EventMessage> | undefined; delivering: boolean; background: (work: Promise<unknown>) => void }, log: Logger) {
    this.#queue = options.queue
    this.#delivering = options.delivering
    this.#background = options.background
    this.#log = log
  }

  /** Whether events are sent at all (a receiver is configured). */
  get delivering(): boolean {
    return this.#delivering
  }

  enqueue(eventId: string | null | undefined): void {
    if (!eventId || !this.#delivering) return
    const queue = this.#queue
    if (!queue) {
      this.#log.warn('events.enqueue', { outcome: 'no_binding', event_id: eventId })
      return
    }
    const log = this.#log
    this.#background(
      Promise.resolve()
        .then(() => queue.send({ event_id: eventId }))
        .then(
          () => log.info('events.enqueue', { outcome: 'ok', event_id: eventId }),
          (error: unknown) => log.warn('events.enqueue', { outcome: 'error', event_id: eventId, error }),
        ),
    )
  }

  /** Queues these ids again, in batches, and waits for the sends (the cron's re-enqueue); false without the binding. */
  async enqueueAgain(eventIds: string[]): Promise<boolean> {
    if (!this.#queue) return false
    for (let i = 0; i < eventIds.length; i += SEND_BATCH)
      await this.#queue.sendBatch(eventIds.slice(i, i + SEND_BATCH).map((id) => ({ body: { event_id: id } })))
    return true
  }
}
