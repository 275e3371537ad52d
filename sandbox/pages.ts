import { html } from 'hono/html'
import type { SandboxAdvertiser } from './tiktok.ts'

const layout = (title: string, body: unknown) => html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <style>
      body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #111; }
      .badge { display: inline-block; background: #fe2c55; color: #fff; border-radius: 4px; padding: 0 .5rem; font-weight: 600; }
      button { font: inherit; padding: .5rem 1.25rem; border-radius: 6px; border: 1px solid #888; cursor: pointer; }
      button.primary { background: #fe2c55; border-color: #fe2c55; color: #fff; }
      table { border-collapse: collapse; width: 100%; } td, th { border-bottom: 1px solid #ddd; padding: .35rem; text-align: left; }
      .error { color: #b00020; } code { background: #f3f3f3; padding: 0 .25rem; }
    </style>
  </head>
  <body>
    ${body}
  </body>
</html>`

/** The sandbox's imitation of TikTok's authorize page; every value is escaped by `html`. */
export const authorizePage = (input: {
  error?: string
  appId?: string
  redirectUri?: string
  state?: string
  advertisers?: SandboxAdvertiser[]
}) =>
  layout(
    'TikTok for Business (sandbox): authorize',
    input.error
      ? html`<p><span class="badge">TikTok sandbox</span></p>
          <h1>Authorization error</h1>
          <p class="error">${input.error}</p>`
      : html`<p><span class="badge">TikTok sandbox</span></p>
          <h1>Authorize app <code>${input.appId}</code></h1>
          <p>The app asks to manage these advertiser accounts on your behalf:</p>
          <table>
            <tr><th>Advertiser</th><th>ID</th></tr>
            ${input.advertisers?.map((a) => html`<tr><td>${a.name}</td><td><code>${a.id}</code></td></tr>`)}
          </table>
          <p>You will be sent back to <code>${input.redirectUri}</code>.</p>
          <form method="post" action="auth/decision">
            <input type="hidden" name="app_id" value="${input.appId}" />
            <input type="hidden" name="redirect_uri" value="${input.redirectUri}" />
            <input type="hidden" name="state" value="${input.state}" />
            <button class="primary" name="decision" value="authorize" id="authorize">Authorize</button>
            <button name="decision" value="deny" id="deny">Deny</button>
          </form>`,
  )

export const databasePage = (rows: Record<string, unknown>[]) =>
  layout(
    'Supabase (sandbox): user_accounts',
    html`<p><span class="badge">Supabase sandbox</span></p>
      <h1><code>public.user_accounts</code></h1>
      <table>
        <tr>${Object.keys(rows[0] ?? { id: '' }).map((k) => html`<th>${k}</th>`)}</tr>
        ${rows.map((row) => html`<tr>${Object.values(row).map((v) => html`<td><code>${v === null || typeof v !== 'object' ? String(v) : JSON.stringify(v)}</code></td>`)}</tr>`)}
      </table>`,
  )
