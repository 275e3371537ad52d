import { describe, expect, it } from 'vitest'
import API from '../../docs/api.md?raw'
import DEPLOY from '../../docs/deploy.md?raw'
import { AppError, ERROR_CODES, type ErrorCode } from '../../src/errors'

/** `| \`code\` | status | retryable | when |` rows of docs/api.md's error table, with their line numbers. */
function errorRows() {
  const lines = API.split('\n')
  const start = lines.indexOf('## Errors')
  const end = lines.findIndex((line, i) => i > start && line.startsWith('## '))
  return lines
    .slice(start, end)
    .map((line, i) => ({ line, at: start + i + 1 }))
    .filter(({ line }) => /^\| `[a-z_]+` /.test(line))
    .map(({ line, at }) => {
      const [, code, status, retryable] = line.split('|').map((cell) => cell.trim())
      return { code: code!.replaceAll('`', ''), statuses: status!.split('/').map(Number), retryable: retryable === 'yes', where: `docs/api.md:${at}` }
    })
}

/** `host/path/*` route patterns, as Cloudflare matches them (a trailing `*` matches anything). */
const routes = [...DEPLOY.matchAll(/pattern = "([^"]+)"/g)].map((m) => m[1]!)
const routed = (url: URL) =>
  routes.some((pattern) => {
    const target = url.host + url.pathname
    return pattern.endsWith('*') ? target.startsWith(pattern.slice(0, -1)) : target === pattern
  })

describe('docs/api.md', () => {
  it('lists every error code the Worker answers, and no other', () => {
    expect(
      errorRows()
        .map((row) => row.code)
        .sort(),
    ).toEqual([...ERROR_CODES].sort())
  })

  it('gives each code the status and retryable src/errors.ts gives it', () => {
    for (const row of errorRows()) {
      const error = new AppError(row.code as ErrorCode)
      expect(row.statuses, `${row.where}: ${row.code}`).toContain(error.status)
      expect(row.retryable, `${row.where}: ${row.code} retryable`).toBe(error.retryable)
    }
  })
})

describe('docs/deploy.md', () => {
  it('the documented health check is inside the documented production routes', () => {
    expect(routes.length).toBeGreaterThan(0)
    const checks = [...DEPLOY.matchAll(/curl (?:-\S+ )*(https:\/\/[^\s`]+\/health)/g)].map((m) => new URL(m[1]!))
    expect(checks.length).toBeGreaterThan(0)
    for (const check of checks) expect(routed(check), `${check} is not routed to the Worker`).toBe(true)
  })
})
