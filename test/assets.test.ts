import { env } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'

const assets = (env as unknown as { ASSETS: Fetcher }).ASSETS

describe('callback page (assets)', () => {
  it('is served with a strict CSP, no-referrer, no-store and no framing', async () => {
    const res = await assets.fetch('https://app.example.com/oauth/callback?auth_code=abc&state=xyz')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/text\/html/)
    const csp = res.headers.get('content-security-policy') ?? ''
    expect(csp).toContain("default-src 'none'")
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("connect-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|https?:/)
    expect(res.headers.get('referrer-policy')).toBe('no-referrer')
    expect(res.headers.get('cache-control')).toBe('no-store')
    const html = await res.text()
    expect(html).toContain('Connecting TikTok')
    // Nothing loads from another origin.
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//)
  })

  it('serves the script with the same headers', async () => {
    const res = await assets.fetch('https://app.example.com/oauth/callback.js')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(res.headers.get('cache-control')).toBe('no-store')
  })
})

describe('favicon (assets)', () => {
  it('/favicon.ico is an icon, served without the Worker', async () => {
    const res = await assets.fetch('https://app.example.com/favicon.ico')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^image\/(x-icon|vnd\.microsoft\.icon)$/)
    expect([...new Uint8Array(await res.arrayBuffer()).slice(0, 4)]).toEqual([0, 0, 1, 0])
  })
})
