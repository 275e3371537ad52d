/**
 * The floor: the same upstream calls as the real exchange, in the same order (claim RPC, code
 * exchange, advertiser list, completion RPC), with no validation, signing, verification or logging.
 * What is left is the cost of the calls themselves.
 */
type FloorEnv = Record<string, string>

export default {
  async fetch(request: Request, env: FloorEnv): Promise<Response> {
    const path = new URL(request.url).pathname
    if (path === '/api/tiktok/oauth/start') {
      return Response.json({ authorize_url: `${env.TIKTOK_AUTH_URL}?state=floor` }, { headers: { 'set-cookie': 'floor=1' } })
    }
    if (path !== '/api/tiktok/oauth/exchange') return new Response('not found', { status: 404 })

    const { auth_code } = (await request.json()) as { auth_code: string }
    const rest = `${env.SUPABASE_URL}/rest/v1`
    const headers = { apikey: env.SUPABASE_SECRET_KEY!, 'content-type': 'application/json' }
    const nonce = crypto.randomUUID()
    const claim = (await (
      await fetch(`${rest}/rpc/tiktok_claim_exchange`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ p_state_nonce: nonce, p_user_id: env.FLOOR_USER_ID, p_code_hash: 'floor', p_claimed_by: 'floor' }),
      })
    ).json()) as { outcome: string }
    const token = (await (
      await fetch(`${env.TIKTOK_API_BASE}/oauth2/access_token/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ app_id: env.TIKTOK_APP_ID, secret: env.TIKTOK_APP_SECRET, auth_code }),
      })
    ).json()) as { data: { access_token: string } }
    const list = (await (
      await fetch(`${env.TIKTOK_API_BASE}/oauth2/advertiser/get/?app_id=${env.TIKTOK_APP_ID}&secret=${env.TIKTOK_APP_SECRET}`, {
        headers: { 'Access-Token': token.data.access_token },
      })
    ).json()) as { data: { list: { advertiser_id: string; advertiser_name: string }[] } }
    const first = list.data.list[0]!
    const done = (await (
      await fetch(`${rest}/rpc/tiktok_complete_exchange`, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          p_state_nonce: nonce,
          p_user_id: env.FLOOR_USER_ID,
          p_claimed_by: 'floor',
          p_access_token: token.data.access_token,
          p_advertiser_id: first.advertiser_id,
          p_advertisers: list.data.list.map((a) => ({ id: a.advertiser_id, name: a.advertiser_name })),
          p_return_to: '/',
        }),
      })
    ).json()) as { outcome: string; connected_at?: string }
    // Not validation: a floor whose writes silently fail would measure less than the real thing.
    if (claim.outcome !== 'claimed' || done.outcome !== 'ok') return new Response(`claim ${claim.outcome}, completion ${done.outcome}`, { status: 500 })
    return Response.json({ success: true, business_id: first.advertiser_id, account_id: first.advertiser_name })
  },
}
