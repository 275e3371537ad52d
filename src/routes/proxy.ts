import { Hono } from 'hono/tiny'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { AppError } from '../errors'
import { jsonOnly } from '../middleware/body'
import type { ApiEnv } from '../middleware/context'
import { requireConnectUser, requireServiceKey } from '../middleware/guards'
import { pathProblem, proxyCall } from '../proxy'

// TikTok's JSON bodies are small; anything larger is not a Marketing API call.
const MAX_BODY_BYTES = 1024 * 1024
const PREFIX = '/api/tiktok/proxy/'
const postBody = jsonOnly({ maxBytes: MAX_BODY_BYTES })

export const proxy = new Hono<ApiEnv>()

/**
 * `ANY /api/tiktok/proxy/open_api/v1.3/<TikTok path>`: a product backend's call, with one of the
 * service keys and the user whose connection to use; TikTok's answer back as TikTok sent it, plus
 * `X-TikTok-Code` (the envelope's code) and the Worker's `X-Request-Id`.
 */
proxy.on(
  ['GET', 'POST'],
  '/*',
  requireServiceKey,
  requireConnectUser,
  async (c, next) => (c.req.method === 'POST' ? postBody(c, next) : next()),
  async (c) => {
    // The path as the client wrote it (the URL's pathname keeps escapes; parsing has resolved dot
    // segments), never anything of the query.
    const url = new URL(c.req.url)
    const raw = url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : ''
    const problem = pathProblem(raw)
    if (problem) throw new AppError('path_not_allowed', { reason: problem })
    const method = c.req.method === 'POST' ? 'POST' : 'GET'
    const forwarded = await proxyCall(c.get('services'), {
      userId: c.get('userId'),
      method,
      path: raw,
      query: url.search,
      body: method === 'POST' ? await c.req.arrayBuffer() : undefined,
    })
    const headers: Record<string, string> = { 'content-type': forwarded.contentType ?? 'application/octet-stream' }
    if (forwarded.code !== undefined) headers['X-TikTok-Code'] = String(forwarded.code)
    return c.body(forwarded.body, forwarded.status as ContentfulStatusCode, headers)
  },
)
