import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { requestId } from 'hono/request-id'
import { requestContext } from './context'
import type { AppEnv } from './env'
import { AppError } from './errors'
import { connection } from './routes/connection'
import { health } from './routes/health'
import { oauth } from './routes/oauth'

const app = new Hono<AppEnv>()

app.use(requestId({ headerName: 'X-Request-Id' }))
app.use(requestContext)

// Under /api/tiktok/, so the production routes that send /api/tiktok/* to this Worker reach it; and
// first, so it answers even while the settings the other routes require are missing.
app.route('/api/tiktok/health', health)
app.route('/api/tiktok/oauth', oauth)
app.route('/api/tiktok', connection)

app.notFound((c) =>
  c.json(
    { success: false, code: 'not_found', error: `There is no ${c.req.method} ${new URL(c.req.url).pathname} endpoint.`, retryable: false, request_id: c.get('requestId') },
    404,
  ),
)

/** The one place errors become answers: typed errors keep their code, anything else is a generic 500. */
app.onError((err, c) => {
  const log = c.get('log')
  const event = c.req.path.startsWith('/api/tiktok/') ? 'oauth.failure' : 'request.failure'
  let error: AppError
  if (err instanceof AppError) error = err
  else if (err instanceof HTTPException && err.status === 400)
    error = new AppError('invalid_json', 400, 'The request body is not valid JSON.')
  else if (err instanceof HTTPException)
    error = new AppError('http_error', err.status as AppError['status'], 'The request could not be processed.')
  else error = new AppError('internal_error', 500, 'Something went wrong on our side. Please try again; if it keeps happening, contact support.')

  const fields = { outcome: 'error', code: error.code, http_status: error.status, retryable: error.retryable, ...error.detail }
  if (error.code === 'internal_error') log?.error(event, { ...fields, error: err })
  else log?.warn(event, fields)
  for (const name in error.headers) c.header(name, error.headers[name])
  return c.json(
    { success: false, code: error.code, error: error.message, retryable: error.retryable, request_id: c.get('requestId') },
    error.status,
  )
})

export default app
