import { errors } from './errors'

export const DEFAULT_RETURN_TO = '/profile'
const MAX_RETURN_TO = 512

/**
 * The origin this request reached, from the URL the runtime saw. Forwarding headers such as
 * `X-Forwarded-Host` are ignored on purpose: a client can set them.
 */
export const requestOrigin = (url: string): string => new URL(url).origin

/** Exact membership only: no prefix, suffix or wildcard matching. */
export function assertAllowedOrigin(origin: string, allowed: readonly string[], originHeader?: string): void {
  if (!allowed.includes(origin)) throw errors.originNotAllowed(origin)
  // A browser names the page that sent the request; it must be this very origin.
  if (originHeader !== undefined && originHeader !== origin) throw errors.originNotAllowed(originHeader)
}

/**
 * Accepts a path on `origin` only (`/profile?tab=x#y`) and returns it normalised. Rejects
 * protocol-relative, absolute, backslash and control-character tricks that browsers would resolve
 * to another host.
 */
export function parseReturnTo(value: string | undefined, origin: string): string {
  if (value === undefined) return DEFAULT_RETURN_TO
  if (
    value.length === 0 ||
    value.length > MAX_RETURN_TO ||
    !value.startsWith('/') ||
    value.startsWith('//') ||
    /[\\\u0000-\u001f\u007f]/.test(value)
  )
    throw errors.invalidReturnTo()
  let url: URL
  try {
    url = new URL(value, origin)
  } catch {
    throw errors.invalidReturnTo()
  }
  if (url.origin !== origin) throw errors.invalidReturnTo()
  return `${url.pathname}${url.search}${url.hash}`
}
