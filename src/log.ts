type Level = 'info' | 'warn' | 'error'
type Fields = Record<string, unknown>

const SENSITIVE_KEY = /token|secret|password|authorization|cookie|jwt|apikey|api_key|auth_code|^code_value$|^state$|^nonce$|^key$/i
const REDACTED = '[redacted]'
// Short values (an empty var, "0") would redact innocent text; real secrets are long.
const MIN_SECRET_LENGTH = 8

/** The forms a secret can take inside a JSON line: as JSON writes it, and URL-encoded. */
const forms = (secret: string): string[] => {
  const escaped = JSON.stringify(secret).slice(1, -1)
  const encoded = encodeURIComponent(secret)
  return escaped === encoded ? [escaped] : [escaped, encoded]
}

// Log keys come from a small fixed set: test each once.
const sensitiveKeys = new Map<string, boolean>()
const isSensitive = (key: string): boolean => {
  let sensitive = sensitiveKeys.get(key)
  if (sensitive === undefined) {
    sensitive = SENSITIVE_KEY.test(key)
    if (sensitiveKeys.size < 1000) sensitiveKeys.set(key, sensitive)
  }
  return sensitive
}

const replacer = (key: string, value: unknown) =>
  key && isSensitive(key) && value !== null && value !== undefined && typeof value !== 'boolean'
    ? REDACTED
    : value instanceof Error
      ? { name: value.name, message: value.message }
      : value

const isFlat = (fields: Fields) => {
  for (const key in fields) if (typeof fields[key] === 'object' && fields[key] !== null) return false
  return true
}

// The common line is flat: redact its keys in one pass instead of a replacer call per value.
const redactKeys = (fields: Fields): Fields => {
  let copy: Fields | undefined
  for (const key in fields) {
    if (isSensitive(key) && fields[key] !== undefined && fields[key] !== null && typeof fields[key] !== 'boolean') {
      copy ??= { ...fields }
      copy[key] = REDACTED
    }
  }
  return copy ?? fields
}

/**
 * Serialises one log line. Two independent guards: keys that name a secret lose their value, and any
 * known secret value still present anywhere in the line (an error message, a URL) is replaced.
 * `secretForms` are the strings to look for, from `forms()`.
 */
export function formatLine(fields: Fields, secretForms: Iterable<string>): string {
  let line = isFlat(fields) ? JSON.stringify(redactKeys(fields)) : JSON.stringify(fields, replacer)
  for (const form of secretForms) {
    // includes() first: the common case, no secret in the line, allocates nothing.
    if (line.includes(form)) line = line.split(form).join(REDACTED)
  }
  return line
}

/** `formatLine`'s search strings for a list of secret values. */
export const secretForms = (secrets: Iterable<string>): string[] => [...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH).flatMap(forms)

/** One structured JSON line per event, for `wrangler tail` and Workers Logs. */
export class Logger {
  readonly requestId: string
  readonly #secrets = new Set<string>()
  readonly #forms: string[] = []
  readonly #context: Fields

  /**
   * `known` are search strings already prepared with `secretForms`, e.g. once per isolate for the
   * configured secrets; `context` goes into every line after the request id.
   */
  constructor(requestId: string, secrets: Iterable<string | undefined> = [], known: readonly string[] = [], context: Fields = {}) {
    this.requestId = requestId
    this.#context = context
    this.#forms.push(...known)
    this.protect(...secrets)
  }

  /** Registers values that must never be printed, e.g. a token the moment it is received. */
  protect(...values: (string | undefined)[]): void {
    for (const value of values) {
      if (!value || value.length < MIN_SECRET_LENGTH || this.#secrets.has(value)) continue
      this.#secrets.add(value)
      this.#forms.push(...forms(value))
    }
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
    const line = formatLine({ time: new Date().toISOString(), level, event, request_id: this.requestId, ...this.#context, ...fields }, this.#forms)
    // One sink, so `wrangler tail` and log drains see every line in order; the level is in the JSON.
    console.log(line)
  }
}
