import { describe, expect, it } from 'vitest'
import { exchange, harness, start, USER_ID, BIG_ID } from '../harness'

describe('smoke', () => {
  it('round trip', async () => {
    const h = await harness()
    const s = await start(h)
    expect(s.response.status).toBe(200)
    const code = h.tiktok.issueCode()
    const res = await exchange({ state: s.state, authCode: code, cookie: s.cookie })
    const body = await res.json()
    console.info(JSON.stringify(body), h.logs.join('\n'))
    expect(res.status).toBe(200)
    expect(h.supabase.rows.find((r) => r.id === USER_ID)?.tiktok_business_id).toBe(BIG_ID)
  })
})
