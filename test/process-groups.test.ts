// The paired bench's aggregation over process groups (bench/support/process-groups.ts): per-round ratios, group medians, their median and spread.

import { describe, expect, it } from 'vitest'
import { groupedRatios, medianOverGroups } from '../bench/support/process-groups.ts'

// Three groups of three rounds, [reference req/s, system req/s] per round. The second group's system
// process is slow in every round (as the 0.897× run of bench/results/paired-rerun-2026-12-07.md).
const groups = [
  [
    [100, 100],
    [100, 104],
    [100, 105],
  ],
  [
    [100, 90],
    [100, 89],
    [100, 91],
  ],
  [
    [100, 106],
    [200, 204],
    [200, 214],
  ],
]

describe('groupedRatios', () => {
  it('takes each round’s ratio, each group’s median, then the median over groups with the lowest and highest group', () => {
    const r = groupedRatios(groups, 1)
    expect(r.perRound.map((g) => g.map((x) => Number(x.toFixed(4))))).toEqual([
      [1, 1.04, 1.05],
      [0.9, 0.89, 0.91],
      [1.06, 1.02, 1.07],
    ])
    expect(r.groupMedians.map((x) => Number(x.toFixed(4)))).toEqual([1.04, 0.9, 1.06])
    // The slow group is outvoted: the median of all nine rounds together would be 1.02, pulled down by it.
    expect(r.median).toBeCloseTo(1.04, 10)
    expect(r.lowest).toBeCloseTo(0.9, 10)
    expect(r.highest).toBeCloseTo(1.06, 10)
  })

  it('divides round by round, not the medians of req/s', () => {
    // Third group alone: its system's median req/s ÷ the reference's is 204 / 200 = 1.02; per round 1.06.
    expect(groupedRatios([groups[2]], 1).median).toBeCloseTo(1.06, 10)
  })

  it('is the plain median of the rounds for one group, and 1 for the reference itself', () => {
    expect(groupedRatios([groups[0]], 1)).toMatchObject({ median: 1.04, lowest: 1.04, highest: 1.04 })
    expect(groupedRatios(groups, 0)).toMatchObject({ median: 1, lowest: 1, highest: 1 })
  })

  it('takes any system as the reference', () => {
    const inverse = groupedRatios(groups, 0, 1)
    expect(inverse.groupMedians.map((x) => Number(x.toFixed(4)))).toEqual([
      Number((1 / 1.04).toFixed(4)),
      Number((1 / 0.9).toFixed(4)),
      Number((1 / 1.06).toFixed(4)),
    ])
    expect(inverse.lowest).toBeCloseTo(1 / 1.06, 10)
    expect(inverse.highest).toBeCloseTo(1 / 0.9, 10)
  })
})

describe('medianOverGroups', () => {
  it('is the median of each group’s median', () => {
    // The system's group medians are 104, 90 and 204 req/s.
    expect(medianOverGroups(groups, 1)).toBe(104)
    expect(medianOverGroups(groups, 0)).toBe(100)
  })
})
