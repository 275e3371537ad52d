/**
 * Scriptable faults, shared by the TikTok and Supabase stand-ins. A fault is queued for a target
 * (one upstream endpoint) and consumed by the next matching requests; `latencyMs` also applies to
 * every request when set as the default.
 */
export type Fault = {
  /** Wait this long before answering. */
  latencyMs?: number
  /** Never answer (the caller's timeout fires). */
  hang?: boolean
  /** Answer HTTP 200 with this TikTok envelope code. */
  tiktokCode?: number
  /** Answer with this HTTP status and a plain-text body. */
  status?: number
  /** Answer HTTP 200 with an HTML page instead of JSON. */
  nonJson?: boolean
  /** Answer with this JSON body (HTTP `status`, 200 by default): an answer of a shape TikTok may change to. */
  json?: unknown
  /** Hold the answer: `reached()` is called when the request arrives, it proceeds once `release` settles. */
  hold?: { reached: () => void; release: Promise<unknown> }
}

/**
 * `read`: TikTok's read endpoints (advertiser/info, campaign/get, report/integrated/get); `rest`: any
 * PostgREST call but the schema check; `rpc`: only the completion
 * (`/rest/v1/rpc/tiktok_complete_exchange`); `schema`: only the schema check
 * (`/rest/v1/rpc/tiktok_connect_schema`, once per Worker isolate); `webhook`: a delivery to the
 * sandbox's receiver (`/webhooks`).
 */
export type FaultTarget = 'token' | 'advertisers' | 'revoke' | 'read' | 'rest' | 'rpc' | 'schema' | 'jwks' | 'webhook'
export const FAULT_TARGETS: readonly FaultTarget[] = ['token', 'advertisers', 'revoke', 'read', 'rest', 'rpc', 'schema', 'jwks', 'webhook']

export class Faults {
  #queue = new Map<FaultTarget, Fault[]>()
  /** Applied to every request: the benchmark's upstream latency. */
  defaultLatencyMs = 0

  /** Queues `fault` for the next `times` requests to `target`. */
  add(target: FaultTarget, fault: Fault, times = 1): void {
    const list = this.#queue.get(target) ?? []
    for (let i = 0; i < times; i++) list.push(fault)
    this.#queue.set(target, list)
  }

  clear(): void {
    this.#queue.clear()
    this.defaultLatencyMs = 0
  }

  /** The fault for this request: a queued one, else the `x-sandbox-fault` header (JSON), else none. */
  take(target: FaultTarget, header: string | undefined): Fault {
    const queued = this.#queue.get(target)?.shift()
    if (queued) return queued
    if (header) {
      try {
        const parsed = JSON.parse(header) as Fault & { target?: string }
        if (!parsed.target || parsed.target === target) return parsed
      } catch {
        // A malformed header is ignored, as a real upstream would ignore an unknown header.
      }
    }
    return {}
  }

  /** Sleeps for the fault's latency; a hanging fault never resolves, a held one until released. */
  async delay(fault: Fault): Promise<void> {
    const ms = fault.latencyMs ?? this.defaultLatencyMs
    if (fault.hang) await new Promise(() => {})
    if (fault.hold) {
      fault.hold.reached()
      await fault.hold.release
    }
    if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms))
  }
}

/** Answers the non-TikTok-code faults; undefined when the request should proceed. */
export function faultResponse(fault: Fault): Response | undefined {
  if (fault.json !== undefined) return Response.json(fault.json, { status: fault.status ?? 200 })
  if (fault.status) return new Response(`sandbox fault: HTTP ${fault.status}`, { status: fault.status })
  if (fault.nonJson) return new Response('<html><body>502 Bad Gateway</body></html>', { headers: { 'content-type': 'text/html' } })
  return undefined
}
