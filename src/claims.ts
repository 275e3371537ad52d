import { clock } from './http'
import type { Claim, ClaimInput, SupabaseStore } from './supabase'

/** A twin submission still in flight is polled this many times, this far apart, before "in progress". */
export const REPLAY_POLLS = 6
export const REPLAY_POLL_MS = 500

/**
 * Where a state stands for this request: `claimed` (this request exchanges the code), `done` (an
 * earlier submission stored the connection), `used`, `locked`, or `pending` once a twin submission
 * still in flight has had its polls to finish. The route maps each to its answer.
 */
export async function claimState(db: SupabaseStore, claim: ClaimInput): Promise<Claim> {
  let outcome = await db.claimExchange(claim)
  for (let poll = 0; outcome.outcome === 'pending' && poll < REPLAY_POLLS; poll++) {
    await clock.sleep(REPLAY_POLL_MS)
    outcome = await db.claimExchange(claim)
  }
  return outcome
}
