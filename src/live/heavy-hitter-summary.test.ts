// Unit tests of merging heavy-hitters summaries: exact without eviction, bounds kept with it, the capacity kept.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type HeavyHitter, mergeSummaries } from './heavy-hitter-summary.ts'
import { SpaceSavingTable } from './space-saving.ts'

function hitter(path: string, count: number, fields: Partial<HeavyHitter> = {}): HeavyHitter {
  return {
    direction: 'inbound',
    method: 'GET',
    authority: 'app',
    path,
    count,
    countError: 0,
    successes: count,
    bestMs: 1,
    worstMs: 1,
    lastMs: 1,
    lastAt: 0,
    ...fields,
  }
}

describe('mergeSummaries', () => {
  it('sums counts and successes by key, exactly when no summary evicted, busiest first', () => {
    const merged = mergeSummaries(
      [
        {
          entries: [
            hitter('/a', 3, { successes: 2, bestMs: 4, worstMs: 9, lastMs: 5, lastAt: 10 }),
            hitter('/b', 1),
          ],
          untrackedAtMost: 0,
        },
        {
          entries: [
            hitter('/a', 2, { successes: 2, bestMs: 2, worstMs: 6, lastMs: 6, lastAt: 20 }),
            hitter('/c', 7),
          ],
          untrackedAtMost: 0,
        },
      ],
      10,
    )
    expect(merged.untrackedAtMost).toBe(0)
    expect(merged.entries.map((e) => [e.path, e.count, e.countError])).toEqual([
      ['/c', 7, 0],
      ['/a', 5, 0],
      ['/b', 1, 0],
    ])
    expect(merged.entries[1]).toMatchObject({ successes: 4, bestMs: 2, worstMs: 9, lastMs: 6, lastAt: 20 })
  })

  it("adds a full summary's untracked bound to the count and error of a key it does not hold", () => {
    const merged = mergeSummaries(
      [
        { entries: [hitter('/a', 10), hitter('/b', 4)], untrackedAtMost: 4 },
        { entries: [hitter('/b', 3)], untrackedAtMost: 0 },
      ],
      10,
    )
    expect(merged.entries.map((e) => [e.path, e.count, e.countError])).toEqual([
      ['/a', 10, 0],
      ['/b', 7, 0],
    ])
    const other = mergeSummaries(
      [
        { entries: [hitter('/a', 10)], untrackedAtMost: 4 },
        { entries: [hitter('/b', 3)], untrackedAtMost: 0 },
      ],
      10,
    )
    expect(other.entries.find((e) => e.path === '/b')).toMatchObject({
      count: 7,
      countError: 4,
      successes: 3,
    })
    expect(other.untrackedAtMost).toBe(4)
  })

  it('keeps the capacity largest, and a dropped count bounds the untracked keys', () => {
    const merged = mergeSummaries(
      [{ entries: [hitter('/a', 9), hitter('/b', 5), hitter('/c', 2)], untrackedAtMost: 0 }],
      2,
    )
    expect(merged.entries.map((e) => e.path)).toEqual(['/a', '/b'])
    expect(merged.untrackedAtMost).toBe(2)
  })

  it('keeps count an upper and count - error a lower bound when tables of disjoint streams are merged', () => {
    const stream = fc.array(fc.integer({ min: 0, max: 25 }), { maxLength: 150 })
    fc.assert(
      fc.property(
        fc.array(stream, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 8 }),
        (streams, capacity) => {
          const truth = new Map<string, number>()
          const summaries = streams.map((s) => {
            const table = new SpaceSavingTable(capacity)
            for (const k of s) {
              table.add('inbound', 'GET', 'app', `/${k}`, true, 1, 0)
              truth.set(`/${k}`, (truth.get(`/${k}`) ?? 0) + 1)
            }
            return table.summary()
          })
          const merged = mergeSummaries(summaries, capacity)
          expect(merged.entries.length).toBeLessThanOrEqual(capacity)
          const held = new Set(merged.entries.map((e) => e.path))
          for (const e of merged.entries) {
            const n = truth.get(e.path) ?? 0
            expect(e.count).toBeGreaterThanOrEqual(n)
            expect(e.count - e.countError).toBeLessThanOrEqual(n)
          }
          for (const [path, n] of truth)
            if (!held.has(path)) expect(n).toBeLessThanOrEqual(merged.untrackedAtMost)
        },
      ),
    )
  })
})
