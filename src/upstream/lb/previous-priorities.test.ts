import { describe, expect, it } from 'vitest'
import { PreviousPriorities } from './previous-priorities.ts'

describe("previous_priorities (Envoy's retry priority, update frequency 2)", () => {
  it('keeps the original load for the first retry, then excludes every level tried', () => {
    const p = new PreviousPriorities()
    const health = [100, 100, 100]
    p.attempted(0)
    expect(p.skipLevels(health)).toBe(0)
    p.attempted(0)
    expect(p.skipLevels(health)).toBe(0b001)
    p.attempted(1)
    // Three tries: not an update; the last exclusions stand.
    expect(p.skipLevels(health)).toBe(0b001)
    p.attempted(1)
    expect(p.skipLevels(health)).toBe(0b011)
  })

  it('forgets the exclusions and the tries when no healthy level would be left', () => {
    const p = new PreviousPriorities()
    p.attempted(0)
    p.attempted(1)
    // Level 2 has no health: excluding 0 and 1 leaves nothing, so start over.
    expect(p.skipLevels([100, 100, 0])).toBe(0)
    p.attempted(0)
    expect(p.skipLevels([100, 100, 0])).toBe(0)
    p.attempted(0)
    expect(p.skipLevels([100, 100, 0])).toBe(0b001)
  })
})
