import { defineConfig } from 'vitest/config'

// Browser round trips: Node drives Debian's Chromium against `wrangler dev` + the sandbox.
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
})
