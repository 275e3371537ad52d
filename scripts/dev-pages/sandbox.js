// /__dev/sandbox.js: served by `npm run dev` alone (scripts/dev-assets.ts), never deployed. Where this
// run's sandbox is, whatever ports it was given, and a Supabase access token from it, for the demo
// profile and for a team's own page in local/. A product's real page gets the token from its own
// Supabase client instead; the call below is the same password grant Supabase Auth answers.

const settings = await fetch(new URL('sandbox.json', import.meta.url), { cache: 'no-store' }).then((r) => r.json())

/** This run's sandbox origin (`http://127.0.0.1:8790` by default). */
export const sandbox = settings.sandbox
/** The Supabase URL the Worker uses here: the sandbox's Supabase stand-in. */
export const supabaseUrl = settings.supabase_url
/** `{ email, password }` of the sandbox's demo user. */
export const demoUser = settings.demo_user

const failure = (code, message, cause) => Object.assign(new Error(message), { code, cause })

/**
 * Signs in with Supabase Auth's password grant at the sandbox. Resolves `{ accessToken, email,
 * expiresAt }` (milliseconds); rejects with an Error whose message says what to do.
 */
export async function signIn(email = demoUser.email, password = demoUser.password) {
  let response
  try {
    response = await fetch(`${supabaseUrl}/auth/v1/token?grant_type=password`, {
      method: 'POST',
      // Real Supabase wants the project's publishable key here; the sandbox takes any.
      headers: { 'content-type': 'application/json', apikey: 'sb_publishable_sandbox' },
      body: JSON.stringify({ email, password }),
    })
  } catch (cause) {
    throw failure('network', `Could not reach the sandbox's sign-in at ${supabaseUrl}. Check that npm run dev is still running, then try again.`, cause)
  }
  const body = await response.json().catch(() => ({}))
  if (response.ok && typeof body.access_token === 'string')
    return { accessToken: body.access_token, email: body.user?.email ?? email, expiresAt: body.expires_at * 1000 }
  if (body.error_code === 'invalid_credentials')
    throw failure('invalid_credentials', `Wrong email or password. The sandbox's user is ${demoUser.email} / ${demoUser.password}.`)
  throw failure(body.error_code ?? `http_${response.status}`, `The sandbox's sign-in answered HTTP ${response.status}${body.msg ? `: ${body.msg}` : ''}.`)
}

let current
/**
 * The demo user's access token, signed in on first use and again a minute before it expires. Pass
 * it as `connectTikTok({ getAccessToken: sandboxAccessToken })`.
 */
export async function sandboxAccessToken() {
  if (!current || current.expiresAt - Date.now() < 60_000) current = await signIn()
  return current.accessToken
}
