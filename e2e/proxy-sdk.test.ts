// TikTok's own JS SDK as a product backend uses it, pointed at the proxy: only its base URL and two
// headers change. Against `wrangler dev` and the sandbox, as `npm run dev` runs them.
import { AccountManagementApi, ApiClient, CampaignCreationApi } from 'tiktok-business-api-sdk-official'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEMO_ADVERTISERS, DEMO_USER } from '../sandbox/app.ts'
import { type Stack, startStack } from '../scripts/stack.ts'
import { connectUser } from './connect.ts'

// Ports apart from `npm run dev`'s and the other e2e files'.
const WORKER_PORT = 8879
const SANDBOX_PORT = 8892

let stack: Stack
beforeAll(async () => {
  stack = await startStack({ workerPort: WORKER_PORT, sandboxPort: SANDBOX_PORT, useDevVars: false, quiet: true, raisedLimits: true })
  await fetch(`${stack.sandboxOrigin}/__sandbox/reset`, { method: 'POST' })
})
afterAll(async () => {
  await stack?.stop()
})

/** The SDK's client for the proxy: the base URL, the service key, whose connection. */
function proxiedClient(): InstanceType<typeof ApiClient> {
  const client = new ApiClient()
  client.basePath = `${stack.workerOrigin}/api/tiktok/proxy`
  const [, key] = stack.vars.SERVICE_KEYS!.split(':')
  client.defaultHeaders = { ...client.defaultHeaders, Authorization: `Bearer ${key}`, 'X-TikTok-Connect-User': DEMO_USER.id }
  return client
}

/** The SDK's callback API as a promise: the parsed data and the raw answer (superagent's response). */
const called = <T>(run: (done: (error: unknown, data: T, response: { status: number; text: string; headers: Record<string, string> }) => void) => void) =>
  new Promise<{ data: T; response: { status: number; text: string; headers: Record<string, string> } }>((resolve, reject) =>
    run((error, data, response) => (error ? reject(error) : resolve({ data, response }))),
  )

describe("TikTok's JS SDK through the proxy", () => {
  it('advertiser/info/ and campaign/get/ answer as TikTok would, with the stored token set by the Worker (the SDK’s own Access-Token is dropped)', async () => {
    expect((await connectUser(stack, DEMO_USER.id)).status).toBe(200)
    const [advertiser] = DEMO_ADVERTISERS
    stack.sandbox.tiktok.requests.length = 0

    const accounts = new AccountManagementApi(proxiedClient())
    // The SDK insists on an Access_Token argument: any placeholder, the proxy sets the real one.
    const info = await called((done) => accounts.advertiserInfo([advertiser!.id], 'set-by-the-proxy', {}, done))
    expect(info.response.status).toBe(200)
    expect(info.response.headers['x-tiktok-code']).toBe('0')
    // The SDK's model of the answer is its own; what TikTok said is in the body.
    expect(info.data).toBeDefined()
    expect(JSON.parse(info.response.text)).toMatchObject({ code: 0, data: { list: [{ advertiser_id: advertiser!.id }] } })
    // The ids exact in the bytes the SDK received.
    expect(info.response.text).toMatch(new RegExp(`"advertiser_id":\\s*"${advertiser!.id}"`))

    const campaigns = new CampaignCreationApi(proxiedClient())
    const page = await called((done) => campaigns.campaignGet(advertiser!.id, 'set-by-the-proxy', {}, done))
    expect(page.response.headers['x-tiktok-code']).toBe('0')
    expect(JSON.parse(page.response.text)).toMatchObject({ code: 0, data: { page_info: { page: 1 } } })
    const ids = [...page.response.text.matchAll(/"campaign_id":\s*"?(\d+)/g)].map((m) => m[1]!)
    expect(ids.length).toBeGreaterThan(0)
    for (const id of ids) expect(id).toMatch(/^\d{19}$/)

    // What TikTok received: the connection's token, never the SDK's placeholder nor the service key.
    const stored = (await stack.sandbox.supabase.row(DEMO_USER.id))!.access_token as string
    const sent = stack.sandbox.tiktok.requests.filter((r) => r.path.includes('/advertiser/info/') || r.path.includes('/campaign/get/'))
    expect(sent).toHaveLength(2)
    for (const request of sent) {
      expect(request.headers['access-token']).toBe(stored)
      expect(JSON.stringify(request)).not.toContain('set-by-the-proxy')
      expect(JSON.stringify(request)).not.toContain(stack.vars.SERVICE_KEYS!.split(':')[1]!)
    }
  })

  it('without the service key the SDK gets the Worker’s 401, and TikTok is not called', async () => {
    const client = proxiedClient()
    client.defaultHeaders = { ...client.defaultHeaders, Authorization: 'Bearer not-a-service-key-of-this-worker-0000' }
    stack.sandbox.tiktok.requests.length = 0
    const error = await called((done) => new AccountManagementApi(client).advertiserInfo([DEMO_ADVERTISERS[0]!.id], 'x', {}, done)).catch(
      (e: { status?: number; response?: { text: string } }) => e,
    )
    expect(error).toMatchObject({ status: 401 })
    expect(JSON.parse((error as { response: { text: string } }).response.text)).toMatchObject({ code: 'unauthorized' })
    expect(stack.sandbox.tiktok.requests).toEqual([])
  })
})

describe('the e2e stack', () => {
  it('runs with the limits raised (raisedLimits), as the workerd suite does: one user may start more than 10 flows a minute', async () => {
    const token = await stack.sandbox.supabase.signAccessToken(DEMO_USER.id)
    const statuses = []
    for (let i = 0; i < 12; i++)
      statuses.push(
        (
          await fetch(`${stack.workerOrigin}/api/tiktok/oauth/start`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, origin: stack.workerOrigin },
          })
        ).status,
      )
    expect(statuses).toEqual(Array(12).fill(200))
  })
})
