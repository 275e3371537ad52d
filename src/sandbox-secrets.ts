/**
 * The secrets `sandbox/dev.env` commits for `npm run dev`: anyone can sign with them, so they are
 * refused outside ENVIRONMENT=development (test/node/sandbox-secrets.test.ts keeps this list equal
 * to the file).
 */
export const SANDBOX_SECRETS: Readonly<Record<string, string>> = {
  TIKTOK_APP_SECRET: 'sandbox-not-a-real-tiktok-secret',
  SUPABASE_SECRET_KEY: 'sb_secret_sandbox-not-a-real-key',
  STATE_SECRET: 'sandbox-state-secret-not-for-production-use-0000',
  WEBHOOK_SECRET: 'whsec_urNtZMz38YqZvYOTDS9oRKrB2JBpPCxf24sC/Oe8+js=',
  SERVICE_KEYS: 'sandbox:sandbox-service-key-not-for-production-0001',
}
