// The sandbox as its own process: `node scripts/sandbox.ts --port 8990 --worker-origin http://127.0.0.1:8970`.
// Configuration comes from sandbox/dev.env; prints `ready <url>` once listening.
import { parseArgs } from 'node:util'
import { createSandbox } from '../sandbox/app.ts'
import { openDatabase } from '../sandbox/pglite.ts'
import { serve } from './serve.ts'
import { localConfig, sandboxTier } from './stack.ts'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '8790' },
    'worker-origin': { type: 'string', multiple: true },
    quiet: { type: 'boolean', default: false },
    // The benchmark measures the Worker, not TikTok's tier: `--no-tier` answers every call.
    'no-tier': { type: 'boolean', default: false },
  },
})
const port = Number(values.port)
const vars = localConfig(8787, port, false)
const origin = `http://127.0.0.1:${port}`
const sandbox = await createSandbox({
  origin,
  workerOrigins: values['worker-origin'] ?? vars.ALLOWED_ORIGINS!.split(','),
  appId: vars.TIKTOK_APP_ID!,
  appSecret: vars.TIKTOK_APP_SECRET!,
  supabaseSecretKey: vars.SUPABASE_SECRET_KEY!,
  webhookSecret: vars.WEBHOOK_SECRET,
  database: await openDatabase(),
  record: !values.quiet,
  tiktokTier: values['no-tier'] ? undefined : sandboxTier(vars),
})
await serve(sandbox.app.fetch, port)
console.log(`ready ${origin}`)
