import { html } from 'hono/html'
import type { Delivery, SandboxAdvertiser, TierState } from './types.ts'

/**
 * The one stylesheet of every sandbox page, served at `/sandbox.css`. The TikTok pink is darkened for
 * white text to reach 4.5:1 (#fe2c55 gives 3.7:1).
 */
/** A secret as the sandbox's pages show it: its first and last four characters. */
export const mask = <T>(value: T): T | string => (typeof value === 'string' && value.length > 8 ? `${value.slice(0, 4)}…${value.slice(-4)}` : value)

export const SANDBOX_CSS = `:root { color-scheme: light; }
*, *::before, *::after { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #111; background: #fff; }
body.wide { max-width: 64rem; }
h1 { font-size: 1.75rem; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; line-height: 1.3; }
a { color: #1a56db; }
:focus-visible { outline: 3px solid #1a56db; outline-offset: 2px; }
.badge { display: inline-block; background: #d4113f; color: #fff; border-radius: 4px; padding: 0 .5rem; font-weight: 600; }
button { font: inherit; padding: .5rem 1.25rem; border-radius: 6px; border: 1px solid #767676; background: #f3f3f3; color: #111; cursor: pointer; }
button:hover { background: #e4e4e4; }
button.primary { background: #d4113f; border-color: #d4113f; color: #fff; }
button.primary:hover { background: #b00e35; border-color: #b00e35; }
form.inline { display: inline; } form.inline button { padding: .2rem .6rem; font-size: .9rem; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: .35rem; text-align: left; vertical-align: top; }
/* break-word, not anywhere: a table still sizes its columns to whole ids, and only what cannot fit breaks. */
td { overflow-wrap: break-word; }
code { background: #f3f3f3; padding: 0 .25rem; overflow-wrap: break-word; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; font-size: .85rem; background: #f6f6f6; padding: .5rem; margin: .25rem 0; }
.error { color: #b00020; } .ok { color: #1a7f37; font-weight: 600; } .bad { color: #b00020; font-weight: 600; }
.muted { color: #555; }
.nowrap { white-space: nowrap; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
/* A database row: its columns as name / value pairs, so ten columns never make the page wider. */
.card { border: 1px solid #ccc; border-radius: 8px; padding: .75rem 1rem; margin: 1rem 0; }
.card h2 { margin: 0 0 .5rem; overflow-wrap: anywhere; }
dl.fields { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .35rem 1rem; margin: 0; }
dl.fields dt { font-weight: 600; } dl.fields dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
ul.advertisers { margin: 0; padding-left: 1.1rem; }
/* One tbody per entry (its row, then its details). Narrow screens: each entry becomes a card, each
   cell a labelled line; buttons get a finger-sized target. */
@media (max-width: 40rem) {
  body { margin: 1rem auto; }
  button, form.inline button { min-height: 44px; min-width: 44px; }
  dl.fields { grid-template-columns: minmax(0, 1fr); gap: 0; }
  dl.fields dd { margin-bottom: .5rem; }
  table.cards, table.cards tbody, table.cards tr, table.cards td { display: block; }
  table.cards thead { display: none; }
  table.cards tbody { border-bottom: 2px solid #ccc; padding: .5rem 0; }
  table.cards td { border: 0; padding: .1rem 0; }
  table.cards td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; }
}
`

const layout = (title: string, body: unknown, width: 'narrow' | 'wide' = 'narrow') => html`<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>${title}</title>
    <link rel="stylesheet" href="/sandbox.css" />
  </head>
  <body class="${width}">
    <main>
    ${body}
    </main>
  </body>
</html>`

/** The sandbox's imitation of TikTok's authorize page; every value is escaped by `html`. */
export const authorizePage = (input: { error?: string; appId?: string; redirectUri?: string; state?: string; advertisers?: SandboxAdvertiser[] }) =>
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

const isAdvertiserList = (value: unknown): value is { id: string; name?: string }[] =>
  Array.isArray(value) && value.every((a) => a && typeof a === 'object' && typeof (a as { id?: unknown }).id === 'string')

/** One column's value as a person reads it: null marked, advertisers as a list, anything else as text. */
const cell = (value: unknown, row: Record<string, unknown>) => {
  if (value === null || value === undefined) return html`<span class="muted">null</span>`
  if (isAdvertiserList(value))
    return html`<ul class="advertisers">${value.map(
      (a) => html`<li>${a.name ?? '(no name)'} — <code>${a.id}</code>${a.id === row.advertiser_id ? html` <span class="muted">(chosen)</span>` : ''}</li>`,
    )}</ul>`
  if (value instanceof Date) return html`<code>${value.toISOString()}</code>`
  return html`<code>${typeof value === 'object' ? JSON.stringify(value) : String(value)}</code>`
}

/** Every row of the connector's `tiktok_connections` as a card of column / value pairs, in the table's column order, titled by the user's email. */
export const databasePage = (connections: { email: string; row: Record<string, unknown> }[]) =>
  layout(
    'Supabase (sandbox): tiktok_connections',
    html`<p><span class="badge">Supabase sandbox</span></p>
      <h1><code>public.tiktok_connections</code></h1>
      <p>The connector's own table: one row per connected user, as the Worker wrote it, token masked. A user without a row is not connected. <a href="/supabase/">Reload</a> · <a href="/">Sandbox</a></p>
      <div id="connections">
        ${
          connections.length === 0
            ? html`<p id="no-connections">No connection yet. Connect TikTok from the demo profile to make one.</p>`
            : connections.map(
                ({ email, row }) => html`<article class="card" data-user-id="${String(row.user_id)}">
                <h2>${email}</h2>
                <dl class="fields">
                  ${Object.entries(row).map(([name, value]) => html`<dt>${name}</dt><dd>${cell(value, row)}</dd>`)}
                </dl>
              </article>`,
              )
        }
      </div>`,
    'wide',
  )

export type GrantRow = { grant: string; maskedToken: string; advertisers: { id: string; name?: string }[]; issuedAt: string }

/**
 * The sandbox's home: where things are, and the live TikTok grants with the controls an advertiser
 * has at TikTok (remove the app, or take one advertiser account out of it). Forms post to this origin.
 */
export const sandboxPage = (input: {
  origin: string
  workerOrigins: string[]
  demoUser: { email: string; password: string }
  grants: GrantRow[]
  quota: TierState
}) =>
  layout(
    'tiktok-connect-edge sandbox',
    html`<h1>tiktok-connect-edge sandbox</h1>
      <ul>
        <li><a href="/supabase/">Supabase: what <code>tiktok_connections</code> holds</a></li>
        <li><a href="/webhooks">Webhook receiver: the lifecycle events the Worker delivered</a></li>
        <li>TikTok API for Business: <code>${input.origin}/tiktok/open_api/v1.3</code></li>
        <li>Supabase: <code>${input.origin}/supabase</code> (demo user ${input.demoUser.email} / ${input.demoUser.password})</li>
      </ul>
      <h2>TikTok: live grants</h2>
      <p>What an advertiser sees as the app's access in TikTok for Business. <em>Revoke access</em> ends the grant: TikTok then answers 40105 to its token, and the Worker learns of it only when it next calls TikTok (the sweep, or <code>?verify=true</code>).</p>
      ${
        input.grants.length === 0
          ? html`<p id="no-grants">No live grant. Connect TikTok from the demo profile to make one.</p>`
          : html`<table class="cards" id="grants">
            <thead><tr><th>Grant</th><th>Token</th><th>Advertisers</th><th>Issued</th><th><span class="visually-hidden">Actions</span></th></tr></thead>
            ${input.grants.map(
              (g) => html`<tbody><tr data-grant="${g.grant}">
                <td data-label="Grant"><code>${g.grant}</code></td>
                <td data-label="Token"><code class="nowrap">${g.maskedToken}</code></td>
                <td data-label="Advertisers">${
                  g.advertisers.length === 0
                    ? html`<em>none left</em>`
                    : g.advertisers.map(
                        (a) => html`<div>${a.name ?? '(closed account)'} <code>${a.id}</code>
                    <form class="inline" method="post" action="/__sandbox/tiktok/remove-advertiser">
                      <input type="hidden" name="grant" value="${g.grant}" /><input type="hidden" name="advertiser_id" value="${a.id}" />
                      <button type="submit">Remove</button>
                    </form></div>`,
                      )
                }</td>
                <td data-label="Issued">${g.issuedAt}</td>
                <td><form method="post" action="/__sandbox/tiktok/revoke">
                  <input type="hidden" name="grant" value="${g.grant}" />
                  <button class="primary revoke" type="submit">Revoke access</button>
                </form></td>
              </tr></tbody>`,
            )}
          </table>`
      }
      <p>The Worker's sweep runs on its cron; under <code>npm run dev</code> run it now with
        ${input.workerOrigins.slice(0, 1).map((o) => html`<code>curl ${o.replace('localhost', '127.0.0.1')}/cdn-cgi/handler/scheduled</code>`)}.</p>
      <h2>TikTok: the app's quota</h2>
      ${
        input.quota.tier
          ? html`<p>Enforced as TikTok appears to: at most ${input.quota.tier.qps} calls in each second and ${input.quota.tier.qpm} in each minute, in fixed windows aligned to the clock, counted on arrival. A call beyond either answers <code>code: 40100</code>. <a href="/__sandbox/tiktok/quota">JSON</a></p>
            <dl class="fields" id="quota">
              <dt>Refused: second limit</dt><dd data-refused="second">${input.quota.refused.second}</dd>
              <dt>Refused: minute limit</dt><dd data-refused="minute">${input.quota.refused.minute}</dd>
              <dt>Counted this second</dt><dd>${input.quota.counted.second} of ${input.quota.tier.qps}</dd>
              <dt>Counted this minute</dt><dd>${input.quota.counted.minute} of ${input.quota.tier.qpm}</dd>
            </dl>`
          : html`<p id="quota-off">Not enforced: set <code>TIKTOK_QPS</code> or <code>TIKTOK_QPM</code> (in <code>.dev.vars</code>) to have TikTok answer <code>code: 40100</code> beyond the tier, as it does. <a href="/__sandbox/tiktok/quota">JSON</a></p>`
      }`,
    'wide',
  )

/** Every delivery, newest first: verified or not, and what the receiver answered. */
export const receiverPage = (input: { deliveries: Delivery[]; setupError?: string }) =>
  layout(
    'Webhook receiver (sandbox)',
    html`<p><span class="badge">Sandbox</span></p>
      <h1>Webhook receiver</h1>
      <p>Lifecycle events the Worker delivered to <code>WEBHOOK_URL</code>, newest first, each verified with <code>standardwebhooks</code> and the sandbox's <code>WEBHOOK_SECRET</code>. A retry of an event is a new line with the next attempt number. <a href="/webhooks">Reload</a> · <a href="/webhooks.json">JSON</a> · <a href="/">Sandbox</a></p>
      ${input.setupError ? html`<p class="error">Every delivery is refused: ${input.setupError}.</p>` : ''}
      ${
        input.deliveries.length === 0
          ? html`<p id="no-deliveries">Nothing delivered yet.</p>`
          : html`<table class="cards" id="deliveries">
            <thead><tr><th>Received</th><th>Event</th><th>Type</th><th>Signature</th><th>Attempt</th><th>Answer</th></tr></thead>
            ${input.deliveries.map(
              (d) => html`<tbody data-valid="${d.valid ? 'yes' : 'no'}"><tr>
                <td data-label="Received">${d.received_at}</td>
                <td data-label="Event"><code>${d.id ?? '(no webhook-id)'}</code></td>
                <td data-label="Type"><code>${d.type ?? '?'}</code></td>
                <td data-label="Signature">${d.valid ? html`<span class="ok">valid</span>` : html`<span class="bad">invalid</span> ${d.error}`}</td>
                <td data-label="Attempt">${d.attempt}</td>
                <td data-label="Answer">${d.status}</td>
              </tr>${
                d.payload === undefined
                  ? ''
                  : html`<tr><td colspan="6"><details><summary>Payload</summary><pre>${JSON.stringify(d.payload, null, 2)}</pre></details></td></tr>`
              }</tbody>`,
            )}
          </table>`
      }`,
    'wide',
  )
