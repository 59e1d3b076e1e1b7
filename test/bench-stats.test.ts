// The bench's statistics (bench/support/stats.ts): the mean's 95 % confidence interval that the telemetry bench reports over rounds.

import { describe, expect, it } from 'vitest'
import { meanWithInterval } from '../bench/support/stats.ts'

describe('meanWithInterval', () => {
  it("gives the mean and Student's t interval of a small sample", () => {
    // Mean 10, sample standard deviation 2, n = 4: half-width t(3) × 2 / √4 = 3.182.
    const ci = meanWithInterval([8, 10, 10, 12])
    expect(ci.mean).toBe(10)
    const sd = Math.sqrt(((8 - 10) ** 2 + 0 + 0 + (12 - 10) ** 2) / 3)
    expect(ci.high - ci.mean).toBeCloseTo((3.182 * sd) / 2, 6)
    expect(ci.mean - ci.low).toBeCloseTo((3.182 * sd) / 2, 6)
  })

  it('narrows with more rounds of the same spread, and is a point for one round', () => {
    const few = meanWithInterval([0.9, 1.1, 0.9, 1.1])
    const many = meanWithInterval(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? 0.9 : 1.1)))
    expect(many.high - many.low).toBeLessThan(few.high - few.low)
    expect(meanWithInterval([1.02])).toEqual({ mean: 1.02, low: 1.02, high: 1.02 })
  })
})
