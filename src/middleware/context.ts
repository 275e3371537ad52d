import { createMiddleware } from 'hono/factory'
import type { Bindings } from '../env'
import { AppError } from '../errors'
import type { Logger } from '../log'
import { compose, loggerFor, type Services } from '../services'

// Handlers read variables with `c.get(name)`: Hono's `c.var` copies every variable into a new object
// on each read, which the benchmark's profile showed on the hot path.

/** What every request has once `requestContext` ran. */
export type RequestEnv = { Bindings: Bindings; Variables: { requestId: string; log: Logger } }
/** What every route under `/api/tiktok/` (but health) has: `withServices` ran before it. */
export type ApiEnv = { Bindings: Bindings; Variables: RequestEnv['Variables'] & { services: Services } }
/** A guard's environment: the API's, plus the variables it sets. */
export type GuardEnv<V extends object> = { Bindings: Bindings; Variables: ApiEnv['Variables'] & V }

// hono/request-id's rule for an id: short, and nothing a log line or a header could choke on.
const REQUEST_ID = /^[\w\-=]{1,255}$/

/**
 * Per-request logger (secrets pre-registered for redaction) and the headers every answer carries.
 * The request id is always this Worker's own (`requestId({ headerName: '' })` reads no header), so
 * no client can make its requests look like someone else's in the logs; a well-formed id the client
 * sent is kept beside it as `client_request_id` and echoed as `X-Client-Request-Id`.
 */
export const requestContext = createMiddleware<RequestEnv>(async (c, next) => {
  const clientRequestId = c.req.header('x-request-id')
  const known = clientRequestId !== undefined && REQUEST_ID.test(clientRequestId)
  c.set('log', loggerFor(c.env, c.get('requestId'), known ? { client_request_id: clientRequestId } : {}))
  c.header('X-Request-Id', c.get('requestId'))
  if (known) c.header('X-Client-Request-Id', clientRequestId)
  await next()
  c.header('Cache-Control', 'no-store')
  c.header('X-Content-Type-Options', 'nosniff')
})

/** Builds the request's services (the composition root); stops before any side effect when a setting is missing or malformed. */
export const withServices = createMiddleware<ApiEnv>(async (c, next) => {
  const { services, problems } = compose(c.env, c.executionCtx, c.get('log'))
  if (!services) throw new AppError('misconfigured', { detail: { settings: problems.map((p) => p.name) } })
  c.set('services', services)
  await next()
})
