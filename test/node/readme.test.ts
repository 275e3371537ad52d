import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const README = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8')

/** `host/path/*` route patterns, as Cloudflare matches them (a trailing `*` matches anything). */
const routes = [...README.matchAll(/pattern = "([^"]+)"/g)].map((m) => m[1]!)
const routed = (url: URL) =>
  routes.some((pattern) => {
    const target = url.host + url.pathname
    return pattern.endsWith('*') ? target.startsWith(pattern.slice(0, -1)) : target === pattern
  })

describe('README', () => {
  it('item 15: the documented health check is inside the documented production routes', () => {
    expect(routes.length).toBeGreaterThan(0)
    const checks = [...README.matchAll(/curl (https:\/\/[^\s`]+\/health)/g)].map((m) => new URL(m[1]!))
    expect(checks.length).toBeGreaterThan(0)
    for (const check of checks) expect(routed(check), `${check} is not routed to the Worker`).toBe(true)
  })
})
