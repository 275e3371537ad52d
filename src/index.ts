import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { methodNotAllowed } from 'hono/method-not-allowed'
import { requestId } from 'hono/request-id'
import { Hono } from 'hono/tiny'
import type { Bindings } from './env'
import { AppError, answerFor } from './errors'
import { queue } from './events/deliver'
import type { EventMessage } from './events/outbox'
import { type RequestEnv, requestContext, withServices } from './middleware/context'
import { connection } from './routes/connection'
import { health } from './routes/health'
import { oauth } from './routes/oauth'
import { proxy } from './routes/proxy'
import { scheduled } from './scheduled'

const app = new Hono<RequestEnv>()

/** The one envelope every failure is answered with. */
const answer = (c: Context<RequestEnv>, error: AppError) => {
  for (const name in error.headers) c.header(name, error.headers[name])
  return c.json({ success: false, code: error.code, error: error.message, retryable: error.retryable, request_id: c.get('requestId') }, error.status)
}

// The id is always the Worker's own: no header is read (see requestContext).
app.use(requestId({ headerName: '' }))
app.use(requestContext)
app.use(
  methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) => answer(c as Context<RequestEnv>, new AppError('method_not_allowed', { allow: methods.join(', ') })),
  }),
)

// Under /api/tiktok/, so the production routes that send /api/tiktok/* to this Worker reach it; and
// first, so it answers even while the settings the other routes require are missing.
app.route('/api/tiktok/health', health)
// Nothing below runs with a missing or malformed setting.
app.use('/api/tiktok/*', withServices)
app.route('/api/tiktok/oauth', oauth)
app.route('/api/tiktok/proxy', proxy)
app.route('/api/tiktok', connection)

app.notFound((c) => answer(c, new AppError('not_found', { message: `There is no ${c.req.method} ${new URL(c.req.url).pathname} endpoint.` })))

/** The one place errors become answers: typed errors keep their code, TikTok's map by kind, anything else is a generic 500. */
app.onError((err, c) => {
  const log = c.get('log')
  const event = c.req.path.startsWith('/api/tiktok/') ? 'oauth.failure' : 'request.failure'
  // Hono's JSON body parsing is the one HTTPException this app can meet; any other is a bug.
  const error = err instanceof HTTPException && err.status === 400 ? new AppError('invalid_json') : answerFor(err)
  const fields = { outcome: 'error', code: error.code, http_status: error.status, retryable: error.retryable, ...error.detail }
  if (error.code === 'internal_error') log?.error(event, { ...fields, error: err })
  else log?.warn(event, fields)
  return answer(c, error)
})

// The runtime finds Durable Object classes among the main module's exports.
export { QuotaGovernor } from './quota/governor'

/** HTTP, the EVENTS consumer (and its dead-letter queue), and the cron. */
export default { fetch: app.fetch, queue, scheduled } satisfies ExportedHandler<Bindings, EventMessage>
