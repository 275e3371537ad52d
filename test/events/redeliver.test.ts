import { describe, expect, it } from 'vitest'
import { isDue } from '../../src/events/redeliver'

const MINUTE = 60_000
const at = (ageMinutes: number, attempts: number) =>
  [{ attempts, created_at: new Date(Date.UTC(2026, 10, 25)).toISOString() }, Date.UTC(2026, 10, 25) + ageMinutes * MINUTE] as const

describe('isDue: when the cron sends an undelivered event again', () => {
  it('never attempted: at once (the query already waited 5 minutes)', () => {
    expect(isDue(...at(5, 0))).toBe(true)
  })

  it('attempted: not while a queue message may still be retrying it, then at doubling gaps', () => {
    // One message = six attempts over about 16 minutes.
    expect(isDue(...at(10, 1))).toBe(false)
    expect(isDue(...at(19, 6))).toBe(false)
    expect(isDue(...at(20, 6))).toBe(true)
    // A second message's six attempts: next due at 60 minutes, then 140, 300, ...
    expect(isDue(...at(59, 7))).toBe(false)
    expect(isDue(...at(60, 12))).toBe(true)
    expect(isDue(...at(139, 13))).toBe(false)
    expect(isDue(...at(140, 18))).toBe(true)
    expect(isDue(...at(299, 24))).toBe(false)
    expect(isDue(...at(300, 24))).toBe(true)
  })

  it('a receiver down for a day: a handful of sends per event, not one every quarter hour', () => {
    let attempts = 0
    let sends = 0
    for (let minute = 5; minute <= 24 * 60; minute += 15) {
      if (isDue(...at(minute, attempts))) {
        sends++
        attempts += 6
      }
    }
    expect(sends).toBeLessThanOrEqual(7)
  })
})
