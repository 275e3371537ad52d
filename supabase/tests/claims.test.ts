import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Postgres } from './postgres.ts'
import { ALICE, BOB, type Database, project, startCluster } from './seed.ts'

let pg: Postgres
let db: Database
beforeAll(async () => {
  pg = await startCluster()
  db = await project(pg, 'claims')
})
afterAll(() => pg?.stop())

const as = (role: string, statement: string, sub = ALICE) => db.as(role, statement, sub)

describe('the claim on a state, on PostgreSQL 15', () => {
  const claim = (nonce: string, code: string, by: string, user = ALICE) =>
    as('service_role', `select public.tiktok_claim_exchange('${nonce}', '${user}', '${code}', '${by}') ->> 'outcome'`)
  const release = (nonce: string, by: string) => as('service_role', `select public.tiktok_release_exchange('${nonce}', '${by}') ->> 'outcome'`)
  const ADVERTISERS = [
    { id: '7012345678901234567', name: 'Brand A' },
    { id: '7012345678901234599', name: 'Brand B' },
  ]
  // The completion's last four arguments: the token, the first advertiser chosen, the list, where to go next.
  const completion = (token: string) => `'${token}', '7012345678901234567', '${JSON.stringify(ADVERTISERS)}', '/profile'`

  it('lets the service role claim, complete and read the token; a replay answers what is stored now', async () => {
    expect(await claim('nonce-1', 'h', 'r1')).toBe('claimed')
    const done = await as('service_role', `select public.tiktok_complete_exchange('nonce-1', '${ALICE}', 'r1', ${completion('tok-1')})`)
    const answer = JSON.parse(done) as { outcome: string; connected_at: string }
    expect(answer.outcome).toBe('ok')
    expect(
      await as(
        'service_role',
        `select access_token || '|' || advertiser_id || '|' || (connected_at = '${answer.connected_at}'::timestamptz) from public.tiktok_connections where user_id = '${ALICE}'`,
      ),
    ).toBe('tok-1|7012345678901234567|true')
    expect(await as('service_role', "select status || ' ' || return_to from public.tiktok_oauth_exchanges where state_nonce = 'nonce-1'")).toBe('done /profile')
    // A finished claim cannot be completed again.
    expect(await as('service_role', `select public.tiktok_complete_exchange('nonce-1', '${ALICE}', 'r1', ${completion('tok-2')}) ->> 'outcome'`)).toBe(
      'claim_lost',
    )
    expect(await as('service_role', `select access_token from public.tiktok_connections where user_id = '${ALICE}'`)).toBe('tok-1')

    // The same code again is a replay of what is stored now, not of the first answer.
    await as(
      'service_role',
      `update public.tiktok_connections set advertiser_id = '7012345678901234599', advertiser_name = 'Brand B' where user_id = '${ALICE}'`,
    )
    const replay = JSON.parse(await as('service_role', `select public.tiktok_claim_exchange('nonce-1', '${ALICE}', 'h', 'r2')`))
    expect(replay).toEqual({
      outcome: 'done',
      return_to: '/profile',
      connection: { advertiser: ADVERTISERS[1], advertisers: ADVERTISERS, connected_at: answer.connected_at },
    })
    expect(await claim('nonce-1', 'other-code', 'r3')).toBe('used')
    expect(await claim('nonce-1', 'h', 'r4', BOB)).toBe('used')
  })

  it('counts failed attempts with the claim and locks the state after five', async () => {
    for (let attempt = 1; attempt <= 5; attempt++) {
      expect(await claim('nonce-lock', `code-${attempt}`, `r${attempt}`)).toBe('claimed')
      // A second request with the same code while the first is in flight waits; another code is refused.
      expect(await claim('nonce-lock', `code-${attempt}`, `twin${attempt}`)).toBe('pending')
      expect(await claim('nonce-lock', 'another', `x${attempt}`)).toBe('used')
      expect(await release('nonce-lock', `r${attempt}`)).toBe('released')
      // Repeating a release does not count twice; another request's release touches nothing.
      expect(await release('nonce-lock', `r${attempt}`)).toBe('released')
      expect(await release('nonce-lock', 'not-mine')).toBe('gone')
    }
    expect(await as('service_role', "select failed_attempts from public.tiktok_oauth_exchanges where state_nonce = 'nonce-lock'")).toBe('5')
    expect(await claim('nonce-lock', 'code-6', 'r6')).toBe('locked')
    expect(await as('service_role', "select status from public.tiktok_oauth_exchanges where state_nonce = 'nonce-lock'")).toBe('released')
  })

  it('a release after the completion committed answers done, and the completion after a release cannot commit', async () => {
    expect(await claim('nonce-2', 'h', 'r1', BOB)).toBe('claimed')
    expect(JSON.parse(await as('service_role', `select public.tiktok_complete_exchange('nonce-2', '${BOB}', 'r1', ${completion('tok-b')})`)).outcome).toBe('ok')
    expect(await release('nonce-2', 'r1')).toBe('done')

    expect(await claim('nonce-3', 'h', 'r1', BOB)).toBe('claimed')
    expect(await release('nonce-3', 'r1')).toBe('released')
    const complete = (by: string, token: string) =>
      as('service_role', `select public.tiktok_complete_exchange('nonce-3', '${BOB}', '${by}', ${completion(token)}) ->> 'outcome'`)
    expect(await complete('r1', 'tok-late')).toBe('claim_lost')
    // A retry re-claims the state; the first request's late completion still cannot
    // commit under the retry's claim (its token was revoked when it released).
    expect(await claim('nonce-3', 'h2', 'r2', BOB)).toBe('claimed')
    expect(await complete('r1', 'tok-late')).toBe('claim_lost')
    expect(await as('service_role', `select access_token from public.tiktok_connections where user_id = '${BOB}'`)).toBe('tok-b')
    expect(await complete('r2', 'tok-retry')).toBe('ok')
    expect(await as('service_role', `select access_token from public.tiktok_connections where user_id = '${BOB}'`)).toBe('tok-retry')
  })

  it('a claim left pending for two minutes (a cancelled request) counts as a failure and can be taken over', async () => {
    expect(await claim('nonce-stale', 'h', 'gone', BOB)).toBe('claimed')
    expect(await claim('nonce-stale', 'h', 'twin', BOB)).toBe('pending')
    await as('service_role', "update public.tiktok_oauth_exchanges set claimed_at = now() - interval '3 minutes' where state_nonce = 'nonce-stale'")
    expect(await claim('nonce-stale', 'h', 'twin', BOB)).toBe('claimed')
    expect(await as('service_role', "select failed_attempts || ' ' || claimed_by from public.tiktok_oauth_exchanges where state_nonce = 'nonce-stale'")).toBe(
      '1 twin',
    )
    // The abandoned request can no longer complete or release.
    expect(await as('service_role', `select public.tiktok_complete_exchange('nonce-stale', '${BOB}', 'gone', ${completion('tok-x')}) ->> 'outcome'`)).toBe(
      'claim_lost',
    )
    expect(await release('nonce-stale', 'gone')).toBe('gone')
  })

  it('refuses a claim for a user missing from auth.users (deleted since its token was issued), before anything is stored', async () => {
    await expect(claim('nonce-x', 'h', 'r', '33333333-3333-4333-8333-333333333333')).rejects.toThrow(/foreign key/)
    expect(await as('service_role', "select count(*) from public.tiktok_oauth_exchanges where state_nonce = 'nonce-x'")).toBe('0')
  })

  it('stores the chosen advertiser of the list it was given, and refuses one outside it', async () => {
    expect(await claim('nonce-pick', 'h', 'r1', BOB)).toBe('claimed')
    await expect(
      as(
        'service_role',
        `select public.tiktok_complete_exchange('nonce-pick', '${BOB}', 'r1', 't', '7099999999999999999', '${JSON.stringify(ADVERTISERS)}', '/')`,
      ),
    ).rejects.toThrow(/advertiser_id must be one of advertisers/)
    // Extra keys TikTok may add are not stored.
    const listed = JSON.stringify([{ ...ADVERTISERS[0], role: 'ADMIN' }])
    const answer = JSON.parse(
      await as('service_role', `select public.tiktok_complete_exchange('nonce-pick', '${BOB}', 'r1', 't', '7012345678901234567', '${listed}', '/')`),
    )
    expect(answer).toMatchObject({ outcome: 'ok', advertiser: ADVERTISERS[0], advertisers: [ADVERTISERS[0]] })
    expect(await as('service_role', `select advertisers::text from public.tiktok_connections where user_id = '${BOB}'`)).toBe(
      '[{"id": "7012345678901234567", "name": "Brand A"}]',
    )
    // A missing list is not an empty one.
    expect(await claim('nonce-null', 'h', 'r1', BOB)).toBe('claimed')
    await expect(
      as('service_role', `select public.tiktok_complete_exchange('nonce-null', '${BOB}', 'r1', 't', '7012345678901234567', null, '/')`),
    ).rejects.toThrow(/advertisers must be a JSON array/)
  })

  it('lets exactly one of two concurrent requests claim a state', async () => {
    // The first holds its transaction open while the second arrives: the second must wait on the
    // primary key, then find the claim taken (the same code: pending).
    const racer = (by: string, hold: number) =>
      as(
        'service_role',
        `begin;
         select public.tiktok_claim_exchange('nonce-race', '${BOB}', 'h', '${by}') ->> 'outcome';
         select pg_sleep(${hold});
         commit;`,
      )
    const results = await Promise.all([racer('first', 0.5), new Promise((r) => setTimeout(r, 100)).then(() => racer('second', 0))])
    expect(results.map((out) => out.split('\n')[0])).toEqual(['claimed', 'pending'])
    expect(await as('service_role', "select claimed_by from public.tiktok_oauth_exchanges where state_nonce = 'nonce-race'")).toBe('first')
  })
})
