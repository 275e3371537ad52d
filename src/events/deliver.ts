import type { Bindings } from '../env'
import { fetchWithTimeout, NetworkError } from '../http'
import type { Logger } from '../log'
import { compose, loggerFor, type Services } from '../services'
import type { StoredEvent } from '../supabase'
import { webhookHeaders } from './sign'

/** wrangler.toml's dead-letter queue; a per-environment name must keep the suffix. */
const isDeadLetterQueue = (name: string) => name.endsWith('-dlq')

// A ceiling for when max_retries is raised in wrangler.toml; the default 5 retries stop at 480 s.
const MAX_RETRY_SECONDS = 900
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** The wait before the queue's next attempt after `attempts` failed ones: `first`, twice that, … (30 s, 60 s, 120 s by default). */
export const retryDelaySeconds = (attempts: number, first: number): number => Math.min(first * 2 ** (Math.max(attempts, 1) - 1), MAX_RETRY_SECONDS)

/** Why a delivery failed, short enough for the log and `last_error`; never the URL or the body. */
type Sent = { ok: true; status: number } | { ok: false; reason: string }

/**
 * POSTs one event to the receiver, signed (Standard Webhooks). The body is the stored payload; the
 * receiver dedupes on `webhook-id`, the event id, the same on every attempt. A redirect is a failure,
 * not followed: the signature and the event are for the configured URL only.
 */
async function post(s: Services, event: StoredEvent): Promise<Sent> {
  const body = JSON.stringify(event.payload)
  const headers = await webhookHeaders(s.webhookKey!, event.id, Math.floor(s.clock.now() / 1000), body)
  let response: Response
  try {
    response = await fetchWithTimeout(
      s.config.webhook!.url,
      { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body, redirect: 'manual' },
      s.config.upstreamTimeoutMs,
    )
  } catch (error) {
    return { ok: false, reason: error instanceof NetworkError && error.timedOut ? 'timeout' : 'network_error' }
  }
  // Only the status matters; the body is not read, so a large or slow one costs nothing.
  await response.body?.cancel().catch(() => undefined)
  if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status }
  return { ok: false, reason: response.status >= 300 && response.status < 400 ? `redirect_${response.status}` : `http_${response.status}` }
}

/** One message: delivered and acknowledged, or counted and retried later with a longer wait. */
async function deliverOne(message: Message<unknown>, s: Services): Promise<void> {
  const { db, config, log } = s
  const body = message.body as { event_id?: unknown } | null
  const id = typeof body?.event_id === 'string' && UUID.test(body.event_id) ? body.event_id : undefined
  if (!id) {
    // Nothing this Worker sent: retrying cannot make it readable.
    log.warn('events.deliver', { outcome: 'malformed_message', message_id: message.id })
    message.ack()
    return
  }
  const started = Date.now()
  const retry = (fields: Record<string, unknown>) => {
    const delaySeconds = retryDelaySeconds(message.attempts, config.eventsRetrySeconds)
    log.warn('events.deliver', { event_id: id, attempt: message.attempts, delay_seconds: delaySeconds, duration_ms: Date.now() - started, ...fields })
    message.retry({ delaySeconds })
  }
  try {
    const event = await db.eventForDelivery(id)
    if (!event) {
      log.info('events.deliver', { outcome: 'already_delivered', event_id: id })
      message.ack()
      return
    }
    const sent = await post(s, event)
    const fields = { event_id: id, type: event.type, attempt: message.attempts, duration_ms: Date.now() - started }
    if (sent.ok) {
      // If this write fails the message is retried and the event sent again: at least once, and
      // the receiver dedupes on webhook-id.
      await db.markEventDelivered(id)
      log.info('events.deliver', { outcome: 'delivered', http_status: sent.status, ...fields })
      message.ack()
      return
    }
    const counted = await db.recordEventFailure(id, sent.reason).catch((error: unknown) => {
      log.warn('supabase.event_failure', { outcome: 'error', event_id: id, error })
      return undefined
    })
    if (counted?.outcome === 'already_delivered') {
      // A twin message (the cron's) got it through meanwhile.
      log.info('events.deliver', { outcome: 'already_delivered', event_id: id })
      message.ack()
      return
    }
    retry({ outcome: 'failed', reason: sent.reason, type: event.type })
  } catch (error) {
    // The database could not be read or written: the event is safe in the table, try later.
    retry({ outcome: 'error', error })
  }
}

/**
 * The EVENTS consumer. One message at a time, in the batch's order, so a receiver sees one user's
 * events in the order they were queued (not a guarantee: a retried one comes later). Every message is
 * settled on its own: one failure never retries the others.
 */
async function deliver(batch: MessageBatch<unknown>, env: Bindings, ctx: ExecutionContext, log: Logger): Promise<void> {
  const { services } = compose(env, ctx, log)
  if (!services) {
    batch.retryAll({ delaySeconds: MAX_RETRY_SECONDS })
    return
  }
  if (!services.events.delivering) {
    // No receiver: the events stay in the table, where products can read them.
    log.info('events.deliver', { outcome: 'no_receiver', messages: batch.messages.length })
    batch.ackAll()
    return
  }
  for (const message of batch.messages) await deliverOne(message, services)
}

/**
 * Messages that used up their retries. Said loudly, and acknowledged: the event is still undelivered
 * in the table, and the cron sends it again later.
 */
function deadLetters(batch: MessageBatch<unknown>, log: Logger): void {
  for (const message of batch.messages) {
    const eventId = (message.body as { event_id?: unknown } | null)?.event_id
    log.error('events.dead_letter', {
      event_id: typeof eventId === 'string' ? eventId.slice(0, 64) : undefined,
      message_id: message.id,
      attempts: message.attempts,
    })
    message.ack()
  }
}

/** The queue handler, for both queues in wrangler.toml. */
export async function queue(batch: MessageBatch<unknown>, env: Bindings, ctx: ExecutionContext): Promise<void> {
  const log = loggerFor(env, `queue:${crypto.randomUUID()}`)
  if (isDeadLetterQueue(batch.queue)) return deadLetters(batch, log)
  return deliver(batch, env, ctx, log)
}
