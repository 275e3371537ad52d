import type { Context } from 'hono'
import { createMiddleware } from 'hono/factory'
import { AppError } from '../errors'
import type { Logger } from '../log'
import type { ApiEnv, GuardEnv } from './context'

/** The window of both limiters in wrangler.toml (`period`): the longest a refused caller waits. */
const PERIOD_SECONDS = 60

export type Scope = 'start' | 'exchange' | 'exchange_rejected' | 'advertiser' | 'verify' | 'disconnect'

/**
 * Counts one call of `scope` for `key` and refuses it over the limit, before any upstream call.
 * Each scope counts apart, so a user's starts never use up their disconnects.
 */
async function throttle(log: Logger, limiter: RateLimit, scope: Scope, key: string): Promise<void> {
  let success: boolean
  try {
    ;({ success } = await limiter.limit({ key: `${scope}:${key}` }))
  } catch (error) {
    // The limiter is a guard against abuse, not a dependency: when it fails, the request goes on.
    log.warn('rate_limit', { outcome: 'limiter_error', scope, error })
    return
  }
  if (success) return
  log.warn('rate_limit', { outcome: 'limited', scope })
  throw new AppError('rate_limited', {
    message: `Too many attempts. Wait ${PERIOD_SECONDS} seconds, then try again.`,
    reason: scope,
    headers: { 'Retry-After': String(PERIOD_SECONDS) },
  })
}

/** Per signed-in user (after a guard that set `userId`); `when` limits only the requests it names. */
export const limitPerUser = (scope: Scope, when: (c: Context) => boolean = () => true) =>
  createMiddleware<GuardEnv<{ userId: string }>>(async (c, next) => {
    if (when(c)) await throttle(c.get('log'), c.get('services').config.userRateLimit, scope, c.get('userId'))
    await next()
  })

/**
 * The unit one client controls: an IPv4 address, or an IPv6 /64 (one subscriber usually holds a
 * whole /64, so counting single IPv6 addresses would give them billions of keys).
 */
export function clientKey(address: string | undefined): string {
  if (!address) return 'unknown'
  if (!address.includes(':')) return address
  const [head = '', tail = ''] = address.toLowerCase().split('::')
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`
}

// Cloudflare sets CF-Connecting-IP and a client cannot override it at the edge.
const clientOf = (c: Context) => clientKey(c.req.header('cf-connecting-ip'))

/** Per client address, for a route with no signed-in user yet. */
export const limitPerClient = (scope: Scope) =>
  createMiddleware<ApiEnv>(async (c, next) => {
    await throttle(c.get('log'), c.get('services').config.clientRateLimit, scope, clientOf(c))
    await next()
  })

/**
 * Per client address, the requests refused before their state verified (`c.get('state')` unset): junk
 * counts apart from the real flows behind the same address, and over its limit is answered 429.
 * Runs after the refusal, which Hono's compose has already turned into an answer (`c.error`, and
 * `c.res` with its status: a 4xx is the client's junk, a body that is not JSON included).
 */
export const limitRejected = (scope: 'exchange') =>
  createMiddleware<GuardEnv<{ state?: unknown }>>(async (c, next) => {
    await next()
    if (c.error && c.res.status < 500 && !c.get('state'))
      await throttle(c.get('log'), c.get('services').config.clientRateLimit, `${scope}_rejected`, clientOf(c))
  })
