type Level = 'info' | 'warn' | 'error'
type Fields = Record<string, unknown>

const SENSITIVE_KEY = /token|secret|password|authorization|cookie|jwt|apikey|api_key|auth_code|^code_value$|^state$|^nonce$|^key$/i
const REDACTED = '[redacted]'
// Short values (an empty var, "0") would redact innocent text; real secrets are long.
const MIN_SECRET_LENGTH = 8

/**
 * Serialises one log line. Two independent guards: keys that name a secret lose their value, and any
 * known secret value still present anywhere in the line (an error message, a URL) is replaced.
 */
export function formatLine(fields: Fields, secrets: Iterable<string>): string {
  let line = JSON.stringify(fields, (key, value: unknown) =>
    key && SENSITIVE_KEY.test(key) && value !== null && value !== undefined && typeof value !== 'boolean'
      ? REDACTED
      : value instanceof Error
        ? { name: value.name, message: value.message }
        : value,
  )
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET_LENGTH) continue
    // Match the value as JSON.stringify wrote it, escapes included.
    const escaped = JSON.stringify(secret).slice(1, -1)
    line = line.split(escaped).join(REDACTED)
    if (escaped !== encodeURIComponent(secret)) line = line.split(encodeURIComponent(secret)).join(REDACTED)
  }
  return line
}

/** One structured JSON line per event, for `wrangler tail` and Workers Logs. */
export class Logger {
  readonly requestId: string
  readonly #secrets = new Set<string>()

  constructor(requestId: string, secrets: Iterable<string | undefined> = []) {
    this.requestId = requestId
    this.protect(...secrets)
  }

  /** Registers values that must never be printed, e.g. a token the moment it is received. */
  protect(...values: (string | undefined)[]): void {
    for (const value of values) if (value) this.#secrets.add(value)
  }

  info(event: string, fields: Fields = {}): void {
    this.#write('info', event, fields)
  }

  warn(event: string, fields: Fields = {}): void {
    this.#write('warn', event, fields)
  }

  error(event: string, fields: Fields = {}): void {
    this.#write('error', event, fields)
  }

  #write(level: Level, event: string, fields: Fields): void {
    const line = formatLine(
      { time: new Date().toISOString(), level, event, request_id: this.requestId, ...fields },
      this.#secrets,
    )
    // One sink, so `wrangler tail` and log drains see every line in order; the level is in the JSON.
    console.log(line)
  }
}
