import { describe, expect, it } from 'vitest'
import README from '../README.md?raw'
import { ERROR_CODES } from '../src/errors'

/** `host/path/*` route patterns, as Cloudflare matches them (a trailing `*` matches anything). */
const routes = [...README.matchAll(/pattern = "([^"]+)"/g)].map((m) => m[1]!)
const routed = (url: URL) =>
  routes.some((pattern) => {
    const target = url.host + url.pathname
    return pattern.endsWith('*') ? target.startsWith(pattern.slice(0, -1)) : target === pattern
  })

describe('README', () => {
  it('the documented health check is inside the documented production routes', () => {
    expect(routes.length).toBeGreaterThan(0)
    const checks = [...README.matchAll(/curl (https:\/\/[^\s`]+\/health)/g)].map((m) => new URL(m[1]!))
    expect(checks.length).toBeGreaterThan(0)
    for (const check of checks) expect(routed(check), `${check} is not routed to the Worker`).toBe(true)
  })

  it('lists every error code the Worker answers, and no other', () => {
    const section = README.slice(README.indexOf('Every failure is'), README.indexOf('## One connection'))
    const rows = section.split('\n').filter((line) => /^\| \d{3}/.test(line))
    const documented = rows.flatMap((row) => [...row.split('|')[2]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!))
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort())
  })
})
