import { cloudflareTest } from '@cloudflare/vitest-plugin'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { defineConfig } from 'vitest/config'

const ROOT = import.meta.dirname

/**
 * wrangler.toml, copied where no `.dev.vars` (or `.env`) sits beside it. Wrangler reads a config's
 * local secrets from the config's own folder, and the plugin offers no way to turn that off: from the
 * repository root, a developer's `.dev.vars` (WEBHOOK_URL for their own receiver, say) would become
 * the tests' settings. Written whole on every run (renamed into place, so parallel runs never read
 * half a file); `main` and the assets folder are given below, since the copy's own relative paths
 * point nowhere.
 */
function configWithoutLocalSettings(): string {
  const dir = join(ROOT, 'node_modules/.cache/tiktok-connect-vitest')
  mkdirSync(dir, { recursive: true })
  const path = join(dir, 'wrangler.toml')
  const partial = `${path}.${process.pid}`
  writeFileSync(partial, readFileSync(join(ROOT, 'wrangler.toml')))
  renameSync(partial, path)
  return path
}

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: join(ROOT, 'src/index.ts'),
      wrangler: { configPath: configWithoutLocalSettings() },
      miniflare: {
        assets: { directory: join(ROOT, 'public') },
        // Test-only values. TIKTOK_AUTH_URL and TIKTOK_API_BASE keep their production defaults
        // from wrangler.toml: the stand-ins answer those hosts inside the test isolate.
        bindings: {
          TIKTOK_APP_ID: 'test-app-id',
          TIKTOK_APP_SECRET: 'test-app-secret-5b7c1e9f',
          SUPABASE_URL: 'https://abc.supabase.co',
          SUPABASE_SECRET_KEY: 'sb_secret_test_8d1f0a6c2b9e',
          STATE_SECRET: 'test-state-secret-0123456789abcdef0123456789',
          ALLOWED_ORIGINS: 'https://app.example.com,https://example.com',
          // Generous: every database call crosses to PGlite in Node, which a busy machine can stall. Tests of
          // a deadline hold the stand-in and move a fake clock past it (test/harness.ts pastDeadlines).
          UPSTREAM_TIMEOUT_MS: '3000',
          // The suite makes many TikTok calls a second as one app: the governor keeps the largest tier
          // it takes, and the tests of the quota set their own.
          TIKTOK_QPS: '1000',
          TIKTOK_QPM: '60000',
        },
        // The suite calls each endpoint many times a minute as one user: wrangler.toml's limits are
        // raised here, and the tests of throttling swap in TIGHT_RATE_LIMIT (3 a minute) per call.
        ratelimits: {
          USER_RATE_LIMIT: { namespace_id: '7301', simple: { limit: 10_000, period: 60 } },
          CLIENT_RATE_LIMIT: { namespace_id: '7302', simple: { limit: 10_000, period: 60 } },
          TIGHT_RATE_LIMIT: { namespace_id: '7399', simple: { limit: 3, period: 60 } },
        },
      },
    }),
  ],
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/database-setup.ts'],
    exclude: ['test/node/**'],
    restoreMocks: true,
  },
})
