import type { Delivery } from './types.ts'
import { Hono } from 'hono'
import { Webhook } from 'standardwebhooks'
import { faultResponse, Faults } from './faults.ts'
import { receiverPage } from './pages.ts'

export type ReceiverOptions = {
  /** The `whsec_<base64>` secret the Worker signs with (its `WEBHOOK_SECRET`). */
  secret: string | undefined
  /** Keep deliveries for the page (default true); the benchmark turns it off. */
  record?: boolean
}

// Enough for a day of clicking around; the benchmark's thousands of events must not pile up.
const KEEP = 1000

const typeOf = (payload: unknown): string | null => {
  const type = payload && typeof payload === 'object' ? (payload as { type?: unknown }).type : undefined
  return typeof type === 'string' ? type : null
}

const parsed = (body: string): unknown => {
  try {
    return JSON.parse(body)
  } catch {
    return null
  }
}

/**
 * The product's side of the lifecycle events: a Standard Webhooks v1 receiver, as a product would
 * write one, that verifies with the reference implementation rather than with the Worker's code.
 * 204 when the signature verifies, 400 when not; the `webhook` fault makes it fail on purpose.
 */
export function createReceiver(options: ReceiverOptions) {
  const faults = new Faults()
  const deliveries: Delivery[] = []
  const attempts = new Map<string, number>()
  let webhook: Webhook | undefined
  let setupError: string | undefined
  try {
    if (!options.secret) throw new Error('no WEBHOOK_SECRET is configured for the sandbox')
    webhook = new Webhook(options.secret)
  } catch (error) {
    // The sandbox still starts: every delivery is then refused with this reason, on the page too.
    setupError = error instanceof Error ? error.message : String(error)
  }

  const verify = (body: string, headers: Record<string, string>): { valid: true; payload: unknown } | { valid: false; error: string } => {
    if (!webhook) return { valid: false, error: setupError! }
    try {
      return { valid: true, payload: webhook.verify(body, headers) }
    } catch (error) {
      return { valid: false, error: error instanceof Error ? error.message : String(error) }
    }
  }

  const app = new Hono()

  app.post('/webhooks', async (c) => {
    const body = await c.req.text()
    const id = c.req.header('webhook-id') ?? null
    const attempt = (id ? (attempts.get(id) ?? 0) : 0) + 1
    if (id) attempts.set(id, attempt)
    const checked = verify(body, Object.fromEntries(c.req.raw.headers))
    const fault = faults.take('webhook', c.req.header('x-sandbox-fault'))
    await faults.delay(fault)
    const faulted = faultResponse(fault)
    const status = faulted?.status ?? (checked.valid ? 204 : 400)
    if (options.record !== false) {
      deliveries.push({
        id,
        type: typeOf(checked.valid ? checked.payload : parsed(body)),
        valid: checked.valid,
        ...(!checked.valid && { error: checked.error }),
        attempt,
        status,
        received_at: new Date().toISOString(),
        ...(checked.valid && { payload: checked.payload }),
      })
      if (deliveries.length > KEEP) deliveries.splice(0, deliveries.length - KEEP)
    }
    if (faulted) return faulted
    return checked.valid ? c.body(null, 204) : c.json({ error: checked.error }, 400)
  })

  app.get('/webhooks', (c) => c.html(receiverPage({ deliveries: [...deliveries].reverse(), setupError })))

  /** For tests and scripts: every delivery, oldest first. */
  app.get('/webhooks.json', (c) => c.json({ secret_configured: !setupError, deliveries }))

  return {
    app,
    faults,
    deliveries,
    reset() {
      deliveries.length = 0
      attempts.clear()
      faults.clear()
    },
  }
}
