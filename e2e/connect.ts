// A connection made the way a browser makes one, from Node: for tests that need one without a page.
import type { Stack } from '../scripts/stack.ts'

const BINDING_COOKIE = '__Host-tiktok_oauth_binding'

/**
 * `userId` connects on the Worker: POST /start as that user, a code as if the user had pressed
 * Authorize at the sandbox's TikTok, then POST /exchange with the state and the binding cookie.
 * Answers the exchange's status and body, and how long the flow took.
 */
export async function connectUser(stack: Stack, userId: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
  const origin = stack.workerOrigin
  const began = performance.now()
  const token = await stack.sandbox.supabase.signAccessToken(userId)
  const start = await fetch(`${origin}/api/tiktok/oauth/start`, { method: 'POST', headers: { authorization: `Bearer ${token}`, origin } })
  if (start.status !== 200) return { status: start.status, body: (await start.json()) as Record<string, unknown>, ms: performance.now() - began }
  const state = new URL(((await start.json()) as { authorize_url: string }).authorize_url).searchParams.get('state')!
  const binding = new RegExp(`${BINDING_COOKIE}=([^;]+)`).exec(start.headers.get('set-cookie') ?? '')![1]!
  const codes = await fetch(`${stack.sandboxOrigin}/__sandbox/codes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"count": 1}' })
  const [code] = ((await codes.json()) as { codes: string[] }).codes
  const exchange = await fetch(`${origin}/api/tiktok/oauth/exchange`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin, cookie: `${BINDING_COOKIE}=${binding}` },
    body: JSON.stringify({ auth_code: code, state }),
  })
  return { status: exchange.status, body: (await exchange.json()) as Record<string, unknown>, ms: performance.now() - began }
}
