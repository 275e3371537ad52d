import { describe, expect, it } from 'vitest'
import { MAX_WAIT_MS } from '../../src/quota/budget'
import { DEFAULT_QUOTA_SETTINGS, readQuotaSettings } from '../../src/quota/settings'

describe('readQuotaSettings', () => {
  it('unset or blank: the Basic tier, half for the sweep, a second for the proxy', () => {
    expect(readQuotaSettings({})).toEqual({ settings: { qps: 10, qpm: 600, sweepShare: 0.5, proxyMaxWaitMs: 1000 }, problems: [] })
    expect(readQuotaSettings({ TIKTOK_QPS: ' ', SWEEP_QUOTA_SHARE: '' }).settings).toEqual(DEFAULT_QUOTA_SETTINGS)
  })

  it("reads a higher tier, a share in (0, 1] and a wait up to the governor's bound", () => {
    expect(readQuotaSettings({ TIKTOK_QPS: ' 50 ', TIKTOK_QPM: '3000', SWEEP_QUOTA_SHARE: '1', PROXY_MAX_WAIT_MS: '0' }).settings).toEqual({
      qps: 50,
      qpm: 3000,
      sweepShare: 1,
      proxyMaxWaitMs: 0,
    })
    expect(readQuotaSettings({ SWEEP_QUOTA_SHARE: '.25', PROXY_MAX_WAIT_MS: String(MAX_WAIT_MS) }).settings).toMatchObject({
      sweepShare: 0.25,
      proxyMaxWaitMs: MAX_WAIT_MS,
    })
  })

  it.each([
    ['TIKTOK_QPS', '0'],
    ['TIKTOK_QPS', '12.5'],
    ['TIKTOK_QPS', '1e2'],
    ['TIKTOK_QPS', '1001'],
    ['TIKTOK_QPM', '-600'],
    ['TIKTOK_QPM', 'lots'],
    ['PROXY_MAX_WAIT_MS', String(MAX_WAIT_MS + 1)],
    ['SWEEP_QUOTA_SHARE', '0'],
    ['SWEEP_QUOTA_SHARE', '1.5'],
    ['SWEEP_QUOTA_SHARE', '-0.5'],
    ['SWEEP_QUOTA_SHARE', '50%'],
  ] as const)('%s=%s is malformed, reported by name and rule, never by value', (name, value) => {
    // The same fixed words whatever the value.
    const rules = {
      TIKTOK_QPS: 'must be a whole number from 1 to 1000',
      TIKTOK_QPM: 'must be a whole number from 1 to 60000',
      PROXY_MAX_WAIT_MS: `must be a whole number from 0 to ${MAX_WAIT_MS}`,
      SWEEP_QUOTA_SHARE: 'must be a decimal number above 0 and at most 1, e.g. 0.5',
    }
    expect(readQuotaSettings({ [name]: value })).toEqual({ settings: undefined, problems: [{ name, problem: 'malformed', reason: rules[name] }] })
  })
})
