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

describe('the client and its popup page (assets)', () => {
  it('serves tiktok-connect.js as a same-origin script, revalidated on every use', async () => {
    const res = await assets.fetch('https://app.example.com/oauth/tiktok-connect.js')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^(text|application)\/javascript/)
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(res.headers.get('etag')).toBeTruthy()
    expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    const etag = res.headers.get('etag')!
    const again = await assets.fetch('https://app.example.com/oauth/tiktok-connect.js', { headers: { 'if-none-match': etag } })
    expect(again.status).toBe(304)
  })

  it('stays within its budget: 3 KiB gzip', async () => {
    const res = await assets.fetch('https://app.example.com/oauth/tiktok-connect.js')
    const gzipped = await new Response(res.body!.pipeThrough(new CompressionStream('gzip'))).arrayBuffer()
    expect(gzipped.byteLength).toBeLessThanOrEqual(3 * 1024)
  })

  it('serves its types as plain text', async () => {
    const res = await assets.fetch('https://app.example.com/oauth/tiktok-connect.d.ts')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(await res.text()).toContain('export function connectTikTok')
  })

  it('serves the popup placeholder with the strict CSP but without COOP, which would cut the opener off', async () => {
    const res = await assets.fetch('https://app.example.com/oauth/popup')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'")
    expect(res.headers.get('cache-control')).toBe('no-store')
    expect(res.headers.get('x-frame-options')).toBe('DENY')
    expect(res.headers.get('cross-origin-opener-policy')).toBeNull()
    // Its words and brand only: nothing of the flow runs in it.
    const html = await res.text()
    expect(html.match(/<script[^>]*>/g)).toEqual(['<script src="/oauth/words.js" defer>', '<script src="/oauth/page.js" defer>'])
    // The callback page keeps its COOP.
    expect((await assets.fetch('https://app.example.com/oauth/callback')).headers.get('cross-origin-opener-policy')).toBe('same-origin')
  })
})
