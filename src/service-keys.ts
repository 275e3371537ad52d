import { sha256 } from './signed'

/** One key a product's backend presents to the proxy; `id` names it in the log, the key never appears. */
type ServiceKey = { id: string; digest: ArrayBuffer }

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
const MIN_KEY_BYTES = 32
const MIN_DISTINCT_BYTES = 8

/**
 * Parses `SERVICE_KEYS`: `<id>:<key>` pairs, comma-separated (several at once, to rotate), each key
 * at least 32 bytes and not a placeholder; throws with a reason that never quotes a key.
 */
export function parseServiceKeys(spec: string): { id: string; key: string }[] {
  const seen = new Set<string>()
  return spec
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const at = entry.indexOf(':')
      const id = entry.slice(0, at)
      const key = entry.slice(at + 1)
      if (at < 1 || !KEY_ID.test(id) || seen.has(id)) throw new Error('each entry is <id>:<key> with a unique id of letters, digits, _ or -')
      seen.add(id)
      const bytes = new TextEncoder().encode(key)
      if (bytes.length < MIN_KEY_BYTES) throw new Error(`key ${id} must be at least ${MIN_KEY_BYTES} bytes (make one: openssl rand -base64 32)`)
      if (new Set(bytes).size < MIN_DISTINCT_BYTES) throw new Error(`key ${id} has fewer than ${MIN_DISTINCT_BYTES} distinct bytes; make a random one`)
      return { id, key }
    })
}

/**
 * The configured service keys, digested once per isolate. `identify` compares a presented key with
 * every configured one in constant time (SHA-256 of both, `timingSafeEqual`), never stopping early.
 */
export class ServiceKeys {
  readonly #keys: Promise<ServiceKey[]>

  constructor(keys: { id: string; key: string }[]) {
    this.#keys = Promise.all(keys.map(async ({ id, key }) => ({ id, digest: await sha256(key) })))
  }

  /** The id of the key presented, or undefined. */
  async identify(presented: string): Promise<string | undefined> {
    const digest = await sha256(presented)
    let match: string | undefined
    for (const key of await this.#keys) if (crypto.subtle.timingSafeEqual(digest, key.digest) && !match) match = key.id
    return match
  }
}
