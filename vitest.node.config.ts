import { defineConfig } from 'vitest/config'

// Tests that need the machine rather than workerd: the migration against a real PostgreSQL.
export default defineConfig({
  test: {
    include: ['supabase/tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
