/** Raised when an upstream cannot be reached or does not answer in time. */
export class NetworkError extends Error {
  readonly timedOut: boolean
  constructor(url: string, cause: unknown) {
    const timedOut = cause instanceof Error && (cause.name === 'TimeoutError' || cause.name === 'AbortError')
    // The URL without its query: TikTok's advertiser endpoint carries the app secret there.
    super(`${timedOut ? 'timed out' : 'network error'} calling ${url.split('?')[0]}`, { cause })
    this.name = 'NetworkError'
    this.timedOut = timedOut
  }
}

/**
 * `fetch` with a deadline; failures to reach the host become `NetworkError`. The deadline is a plain
 * `setTimeout` (as `AbortSignal.timeout` would fire it), so tests can drive it with a fake clock.
 */
export async function fetchWithTimeout(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  const controller = new AbortController()
  // Left running once the answer arrives: it also bounds reading the body.
  const timer = setTimeout(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs)
  try {
    return await fetch(url, { ...init, signal: controller.signal })
  } catch (cause) {
    clearTimeout(timer)
    throw new NetworkError(url, cause)
  }
}

const INTEGER_LITERAL = /^-?\d+$/
// A bare (unquoted) integer of 16+ digits, or a bare number under an *_id key. A false positive only
// costs the slow path.
const BIG_INTEGER_OR_BARE_ID = /[:,[]\s*-?\d{16}|_id"\s*:\s*-?\d/

/**
 * `JSON.parse` that keeps ids exact: an integer literal beyond 2^53, or any integer under a key
 * ending in `_id`, is returned as its source text instead of a rounded number.
 */
export function parseJsonExact(text: string): unknown {
  // The reviver is slow; most answers have no long integer and no bare *_id at all.
  if (!BIG_INTEGER_OR_BARE_ID.test(text)) return JSON.parse(text)
  return JSON.parse(text, (key: string, value: unknown, context?: { source?: string }) => {
    if (typeof value !== 'number' || !context?.source || !INTEGER_LITERAL.test(context.source)) return value
    return key.endsWith('_id') || !Number.isSafeInteger(value) ? context.source : value
  })
}

/** An exact decimal string for an id that may arrive quoted or bare. */
export const idString = (value: unknown): string | undefined => {
  if (typeof value === 'string' && /^\d{1,32}$/.test(value)) return value
  // parseJsonExact already turned unsafe integers into strings; a safe one prints exactly.
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value)
  return undefined
}
