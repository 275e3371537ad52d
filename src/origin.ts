import { AppError } from './errors'

export const DEFAULT_RETURN_TO = '/profile'
const MAX_RETURN_TO = 512

/**
 * The origin this request reached, from the URL the runtime saw. Forwarding headers such as
 * `X-Forwarded-Host` are ignored on purpose: a client can set them.
 */
export const requestOrigin = (url: string): string => new URL(url).origin

/** Exact membership only: no prefix, suffix or wildcard matching. */
export function assertAllowedOrigin(origin: string, allowed: readonly string[], originHeader?: string): void {
  if (!allowed.includes(origin)) throw new AppError('origin_not_allowed', { detail: { origin: origin } })
  // A browser names the page that sent the request; it must be this very origin.
  if (originHeader !== undefined && originHeader !== origin) throw new AppError('origin_not_allowed', { detail: { origin: originHeader } })
}

// Browsers read a backslash as a slash and drop tabs and newlines; some servers and routers decode
// %2f and %5c back into separators.
const UNSAFE_IN_PATH = /[\\\u0000-\u001f\u007f]|%2f|%5c/i

/**
 * Checked on the input and on its normalised form: one leading slash, not two (`//host` is
 * protocol-relative), and short enough that the signed state stays within its limit after encoding.
 */
const isLocalPath = (path: string): boolean =>
  path.length > 0 && path.length <= MAX_RETURN_TO && path.startsWith('/') && !path.startsWith('//') && !UNSAFE_IN_PATH.test(path)

/**
 * Accepts a path on `origin` only (`/profile?tab=x#y`) and returns it normalised. Rejects
 * protocol-relative, absolute, backslash, encoded-slash and control-character tricks that browsers
 * would resolve to another host.
 */
export function parseReturnTo(value: string | undefined, origin: string): string {
  if (value === undefined) return DEFAULT_RETURN_TO
  if (!isLocalPath(value)) throw new AppError('invalid_return_to')
  let url: URL
  try {
    url = new URL(value, origin)
  } catch {
    throw new AppError('invalid_return_to')
  }
  if (url.origin !== origin) throw new AppError('invalid_return_to')
  const path = `${url.pathname}${url.search}${url.hash}`
  // The normalised path is what is signed and answered, and dot segments can turn a harmless input
  // into another host: `/.//evil.com` and `/a/%2e%2e//evil.com` both become `//evil.com`.
  if (!isLocalPath(path) || new URL(path, origin).origin !== origin) throw new AppError('invalid_return_to')
  return path
}
