import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT, readEnvFile } from '../../scripts/stack.ts'
import { SANDBOX_SECRETS } from '../../src/sandbox-secrets.ts'

const devEnv = readEnvFile(join(ROOT, 'sandbox/dev.env'))

describe('the committed sandbox settings (sandbox/dev.env)', () => {
  it('are the secrets the Worker refuses outside development: every secret-like value of the file, and no other', () => {
    const secretNames = Object.keys(devEnv).filter((name) => /SECRET|KEY/.test(name))
    expect(secretNames.length).toBeGreaterThan(0)
    expect(Object.fromEntries(secretNames.map((name) => [name, devEnv[name]]))).toEqual(SANDBOX_SECRETS)
  })

  it('say ENVIRONMENT=development, the one place that does', () => {
    expect(devEnv.ENVIRONMENT).toBe('development')
  })
})
