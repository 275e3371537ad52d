/** Time as the Worker reads it and waits on it. */
export type Clock = { now(): number; sleep(ms: number): Promise<void> }

/**
 * The one clock every service gets from the composition root: retry backoffs, replay polls and the
 * sweep's pacing all wait through it, so a test replaces `sleep` (or both) in one place and runs
 * them without real time passing.
 */
export const clock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}
