import { zValidator } from '@hono/zod-validator'
import { bodyLimit } from 'hono/body-limit'
import { createMiddleware } from 'hono/factory'
import type * as z from 'zod/mini'
import { AppError } from '../errors'

const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i

/**
 * Rejects, before anything reads the body, what is not a small JSON document: another content type
 * is 415, a body over `maxBytes` is 413. With `optional`, a request without any body is let through.
 */
export const jsonOnly = (options: { maxBytes: number; optional?: boolean }) => {
  const limit = bodyLimit({
    maxSize: options.maxBytes,
    onError: () => {
      throw new AppError('payload_too_large', { message: `The request body is too large; send at most ${options.maxBytes} bytes of JSON.` })
    },
  })
  return createMiddleware(async (c, next) => {
    const contentType = c.req.header('content-type')
    const hasBody = contentType !== undefined || (c.req.header('content-length') ?? '0') !== '0' || c.req.header('transfer-encoding') !== undefined
    if (!hasBody && options.optional) return next()
    if (!contentType || !JSON_MEDIA_TYPE.test(contentType.split(';')[0]!.trim())) throw new AppError('unsupported_media_type')
    return limit(c, next)
  })
}

/** `zValidator` whose failures speak the same JSON envelope as every other error. */
export const validJson = <T extends z.ZodMiniType>(schema: T) =>
  zValidator('json', schema, (result) => {
    if (result.success) return
    const fields = result.error.issues.map((issue) => `${issue.path.join('.') || 'body'}: ${issue.message}`)
    throw new AppError('invalid_request', { message: `The request body is not valid. ${fields.join('; ')}.` })
  })
