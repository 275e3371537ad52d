// `npm run dev`: the Worker under wrangler dev plus the offline TikTok + Supabase sandbox.
import { DEMO_USER } from '../sandbox/app.ts'
import { startStack } from './stack.ts'

const stack = await startStack()
const origins = (stack.vars.ALLOWED_ORIGINS ?? '').split(',')
console.log(`
  tiktok-connect-edge is running against the offline sandbox.

  Open ${origins[0]}/profile  and sign in as ${DEMO_USER.email} / ${DEMO_USER.password}
  (the second product domain: ${origins[1] ?? '-'}/profile)

  Sandbox database: ${stack.sandboxOrigin}/supabase/
  TikTok grants (Revoke access): ${stack.sandboxOrigin}/
  Webhook receiver (events the Worker delivered): ${stack.sandboxOrigin}/webhooks
  Run the revocation sweep now: curl ${stack.workerOrigin.replace('localhost', '127.0.0.1')}/cdn-cgi/handler/scheduled
  Press Ctrl+C to stop.
`)

const shutdown = () => {
  stack.stop().finally(() => process.exit(0))
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)
