// With its extension: scripts/stack.ts reads these settings on Node too.
import { MAX_WAIT_MS } from './budget.ts'

/**
 * The app's TikTok tier and how the Worker shares it. Optional settings with defaults in code, like
 * UPSTREAM_TIMEOUT_MS; declared here until the integration moves them into `Bindings`.
 */
export type QuotaEnv = {
  /** Optional: the app's TikTok calls per second (default 10, TikTok's Basic tier). */
  TIKTOK_QPS?: string
  /** Optional: the app's TikTok calls per minute (default 600). */
  TIKTOK_QPM?: string
  /** Optional: the most of either limit the revocation sweep may take, in (0, 1] (default 0.5). */
  SWEEP_QUOTA_SHARE?: string
  /** Optional: how long a proxy call waits for a permit before 429 tiktok_quota_exhausted (default 1000). */
  PROXY_MAX_WAIT_MS?: string
}

export type QuotaSettings = {
  qps: number
  qpm: number
  sweepShare: number
  proxyMaxWaitMs: number
}

/** One setting the governor refuses, by name and rule, never by value (as `ConfigProblem` in src/env.ts). */
export type QuotaProblem = { name: keyof QuotaEnv; problem: 'malformed'; reason: string }

export const DEFAULT_QUOTA_SETTINGS: QuotaSettings = { qps: 10, qpm: 600, sweepShare: 0.5, proxyMaxWaitMs: 1000 }

// Ultimate, TikTok's highest tier, is 50 / 3,000; far beyond that is a typo, and the governor's memory
// and work per call grow with the minute limit.
const MAX_QPS = 1000
const MAX_QPM = 60_000

/** Reads and checks the quota settings; an unset one takes its default. */
export function readQuotaSettings(env: QuotaEnv): { settings: QuotaSettings; problems: [] } | { settings: undefined; problems: QuotaProblem[] } {
  const problems: QuotaProblem[] = []
  const whole = (name: 'TIKTOK_QPS' | 'TIKTOK_QPM' | 'PROXY_MAX_WAIT_MS', fallback: number, min: number, max: number): number => {
    const raw = env[name]?.trim()
    if (!raw) return fallback
    const value = Number(raw)
    if (/^\d+$/.test(raw) && value >= min && value <= max) return value
    problems.push({ name, problem: 'malformed', reason: `must be a whole number from ${min} to ${max}` })
    return fallback
  }
  const qps = whole('TIKTOK_QPS', DEFAULT_QUOTA_SETTINGS.qps, 1, MAX_QPS)
  const qpm = whole('TIKTOK_QPM', DEFAULT_QUOTA_SETTINGS.qpm, 1, MAX_QPM)
  const proxyMaxWaitMs = whole('PROXY_MAX_WAIT_MS', DEFAULT_QUOTA_SETTINGS.proxyMaxWaitMs, 0, MAX_WAIT_MS)

  let sweepShare = DEFAULT_QUOTA_SETTINGS.sweepShare
  const rawShare = env.SWEEP_QUOTA_SHARE?.trim()
  if (rawShare) {
    const value = Number(rawShare)
    if (/^(0|1)?(\.\d+)?$/.test(rawShare) && value > 0 && value <= 1) sweepShare = value
    else problems.push({ name: 'SWEEP_QUOTA_SHARE', problem: 'malformed', reason: 'must be a decimal number above 0 and at most 1, e.g. 0.5' })
  }

  if (problems.length > 0) return { settings: undefined, problems }
  return { settings: { qps, qpm, sweepShare, proxyMaxWaitMs }, problems: [] }
}
