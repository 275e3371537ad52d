import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, readEnvFile } from '../../scripts/stack.ts'
import { readConfig, SANDBOX_SECRETS } from '../../src/env.ts'

const devEnv = readEnvFile(join(ROOT, 'sandbox/dev.env'))
const allowAll = { limit: async () => ({ success: true }) }
const bindings = { USER_RATE_LIMIT: allowAll, CLIENT_RATE_LIMIT: allowAll }
type Env = Parameters<typeof readConfig>[0]

describe('the committed sandbox settings (sandbox/dev.env)', () => {
  it('are the secrets the Worker refuses outside development: every secret-like value of the file, and no other', () => {
    const secretNames = Object.keys(devEnv).filter((name) => /SECRET|KEY/.test(name))
    expect(secretNames.length).toBeGreaterThan(0)
    expect(Object.fromEntries(secretNames.map((name) => [name, devEnv[name]]))).toEqual(SANDBOX_SECRETS)
  })

  it('run as they are only because the file says ENVIRONMENT=development', () => {
    expect(devEnv.ENVIRONMENT).toBe('development')
    expect(readConfig({ ...devEnv, ...bindings } as unknown as Env).problems).toEqual([])
    const { ENVIRONMENT: _, ...production } = devEnv
    const refused = readConfig({ ...production, ...bindings } as unknown as Env).problems.map((p) => p.name)
    expect(refused.sort()).toEqual([...Object.keys(SANDBOX_SECRETS), 'WEBHOOK_URL'].sort())
  })
})
