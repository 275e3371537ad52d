// Benchmark only: a workerd extension module (internal) behind the `wrapped` bindings that
// scripts/bench.ts gives the Worker as USER_RATE_LIMIT and CLIENT_RATE_LIMIT. It has the shape of a
// Workers Rate Limiting binding and allows every call: the benchmark measures flows, not throttling,
// and its load generator sends every flow as one user from one address, which the real limits
// (wrangler.toml [[ratelimits]]) would refuse after a few calls.
export default function allowAll(_innerEnv) {
  return {
    async limit(_options) {
      return { success: true }
    },
  }
}
