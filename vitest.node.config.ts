import { defineConfig } from 'vitest/config'

// Tests that run on Node rather than workerd: the migration against a real PostgreSQL, and the
// token decryption other services use.
export default defineConfig({
  test: {
    include: ['supabase/tests/**/*.test.ts', 'test/node/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
