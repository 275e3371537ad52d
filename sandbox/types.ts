// The sandbox's shared shapes, and how the stand-ins record a request: they make them, the pages show
// them (no import runs back).

export type SandboxAdvertiser = { id: string; name: string }

export type Tier = { qps: number; qpm: number }

/** The tier and what it refused, by the window that was full; `null` tier: not enforced. */
export type TierState = {
  tier: Tier | null
  refused: { second: number; minute: number }
  /** Calls counted in the current second and minute (refused ones are not counted). */
  counted: { second: number; minute: number }
}

/** One POST that reached the receiver: a retry of the same event is another delivery. */
export type Delivery = {
  /** The `webhook-id` header: the event's id, the same on every retry. */
  id: string | null
  /** The payload's `type`; read from an unverified body too, so a bad delivery still says what it claims. */
  type: string | null
  /** `standardwebhooks` accepted the signature and timestamp with the configured secret. */
  valid: boolean
  /** Why verification failed, in `standardwebhooks`' words. */
  error?: string
  /** 1 for the first delivery of this webhook-id, 2 for its first retry, … */
  attempt: number
  /** What the receiver answered: 204, 400, or a scripted fault's status. */
  status: number
  received_at: string
  /** The verified payload; absent when the signature did not verify. */
  payload?: unknown
}

export type RecordedRequest = {
  method: string
  path: string
  query: Record<string, string>
  headers: Record<string, string>
  body: string
}

/** A request as the stand-ins record it: what reached them, for the tests and the sandbox's pages. */
export async function recorded(request: Request): Promise<RecordedRequest> {
  const url = new URL(request.url)
  return {
    method: request.method,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: Object.fromEntries(request.headers),
    body: request.method === 'GET' ? '' : await request.clone().text(),
  }
}
