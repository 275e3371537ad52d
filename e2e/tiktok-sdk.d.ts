// The few parts of TikTok's JS SDK (swagger-generated, untyped) that the proxy's tests call.
declare module 'tiktok-business-api-sdk-official' {
  type Callback = (error: unknown, data: any, response: any) => void
  export class ApiClient {
    basePath: string
    defaultHeaders: Record<string, string | number>
  }
  export class AccountManagementApi {
    constructor(client?: ApiClient)
    advertiserInfo(advertiserIds: string[], accessToken: string, opts: Record<string, unknown>, callback: Callback): void
  }
  export class CampaignCreationApi {
    constructor(client?: ApiClient)
    campaignGet(advertiserId: string, accessToken: string, opts: Record<string, unknown>, callback: Callback): void
  }
}
