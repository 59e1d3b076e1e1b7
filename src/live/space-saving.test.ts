// Unit tests of the Space-Saving table: exact without eviction, bounded under a flood, Metwally's guarantees.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { HeavyHitter } from './heavy-hitter-summary.ts'
import { MAX_KEY_CHARS, SpaceSavingTable } from './space-saving.ts'

function find(
  table: SpaceSavingTable,
  key: Pick<HeavyHitter, 'direction' | 'method' | 'authority' | 'path'>,
) {
  return table
    .summary()
    .entries.find(
      (e) =>
        e.direction === key.direction &&
        e.method === key.method &&
        e.authority === key.authority &&
        e.path === key.path,
    )
}

describe('SpaceSavingTable', () => {
  it('counts exactly, with successes and best/worst/last latency, while keys fit', () => {
    const table = new SpaceSavingTable(10)
    const latencies = [5, 2, 9, 4]
    latencies.forEach((ms, i) => {
      table.add('inbound', 'GET', 'reviews:9080', '/a', i !== 2, ms, 1000 + i)
    })
    table.add('inbound', 'POST', 'reviews:9080', '/a', true, 1, 2000)
    table.add('outbound', 'GET', 'reviews:9080', '/a', false, 3, 2001)
    table.add('inbound', 'GET', 'ratings:9080', '/a', true, 7, 2002)
    expect(table.size).toBe(4)
    expect(
      find(table, { direction: 'inbound', method: 'GET', authority: 'reviews:9080', path: '/a' }),
    ).toEqual({
      direction: 'inbound',
      method: 'GET',
      authority: 'reviews:9080',
      path: '/a',
      count: 4,
      countError: 0,
      successes: 3,
      bestMs: 2,
      worstMs: 9,
      lastMs: 4,
      lastAt: 1003,
    })
    const summary = table.summary()
    expect(summary.untrackedAtMost).toBe(0)
    const keys = summary.entries.map((e) => `${e.direction} ${e.method} ${e.authority} ${e.count}`).sort()
    expect(keys).toEqual([
      'inbound GET ratings:9080 1',
      'inbound GET reviews:9080 4',
      'inbound POST reviews:9080 1',
      'outbound GET reviews:9080 1',
    ])
  })

  it('keeps its capacity under 100k distinct paths, the true heavy hitter on top, and no index left behind', () => {
    const table = new SpaceSavingTable(200)
    let heavy = 0
    for (let i = 0; i < 100_000; i++) {
      if (i % 10 === 0) {
        table.add('inbound', 'GET', 'app', '/heavy', true, 1, i)
        heavy++
      }
      table.add('inbound', 'GET', 'app', `/flood/${i}`, true, 1, i)
    }
    expect(table.size).toBe(200)
    expect(table.indexedPaths).toBe(200)
    const [top] = [...table.summary().entries].sort((a, b) => b.count - a.count)
    expect(top?.path).toBe('/heavy')
    // Space-Saving: count overestimates by at most its error, and the heavy hitter was never evicted.
    expect(top?.count).toBeGreaterThanOrEqual(heavy)
    expect((top?.count ?? 0) - (top?.countError ?? 0)).toBeLessThanOrEqual(heavy)
    expect(table.summary().untrackedAtMost).toBeGreaterThan(0)
  })

  it('cuts long paths and authorities to a bounded key', () => {
    const table = new SpaceSavingTable(4)
    const long = `/${'x'.repeat(1000)}`
    table.add('inbound', 'GET', 'h'.repeat(1000), long, true, 1, 0)
    table.add('inbound', 'GET', 'h'.repeat(1000), `${long}/other`, true, 1, 0)
    const [entry] = table.summary().entries
    expect(table.size).toBe(1)
    expect(entry?.path.length).toBe(MAX_KEY_CHARS)
    expect(entry?.authority.length).toBe(MAX_KEY_CHARS)
    expect(entry?.count).toBe(2)
  })

  it('reset empties it for the next period', () => {
    const table = new SpaceSavingTable(2)
    for (const p of ['/a', '/b', '/c']) table.add('inbound', 'GET', 'app', p, true, 1, 0)
    table.reset(7)
    expect(table.period).toBe(7)
    expect(table.size).toBe(0)
    expect(table.indexedPaths).toBe(0)
    table.add('inbound', 'GET', 'app', '/d', true, 1, 0)
    expect(table.summary()).toEqual({
      entries: [expect.objectContaining({ path: '/d', count: 1 })],
      untrackedAtMost: 0,
    })
  })

  it("holds Metwally's bounds on any stream: count - error ≤ true ≤ count, and every key above N/capacity is kept", () => {
    const key = fc.integer({ min: 0, max: 30 })
    fc.assert(
      fc.property(fc.array(key, { maxLength: 400 }), fc.integer({ min: 1, max: 12 }), (stream, capacity) => {
        const table = new SpaceSavingTable(capacity)
        const truth = new Map<string, number>()
        for (const k of stream) {
          const path = `/${k}`
          // Two methods and two directions on the same path walk the sibling chain.
          const method = k % 3 === 0 ? 'POST' : 'GET'
          const direction = k % 5 === 0 ? 'outbound' : 'inbound'
          table.add(direction, method, 'app', path, true, k, 0)
          const id = `${direction} ${method} ${path}`
          truth.set(id, (truth.get(id) ?? 0) + 1)
        }
        const summary = table.summary()
        expect(summary.entries.length).toBe(Math.min(capacity, truth.size))
        expect(table.indexedPaths).toBeLessThanOrEqual(capacity)
        const held = new Set<string>()
        for (const e of summary.entries) {
          const id = `${e.direction} ${e.method} ${e.path}`
          held.add(id)
          const n = truth.get(id) ?? 0
          expect(e.count).toBeGreaterThanOrEqual(n)
          expect(e.count - e.countError).toBeLessThanOrEqual(n)
          expect(e.count - e.countError).toBeGreaterThanOrEqual(1)
        }
        for (const [id, n] of truth) {
          if (n > stream.length / capacity) expect(held.has(id)).toBe(true)
          if (!held.has(id)) expect(n).toBeLessThanOrEqual(summary.untrackedAtMost)
        }
        // The counts add up to the stream (each request adds exactly one to one counter).
        expect(summary.entries.reduce((s, e) => s + e.count, 0)).toBe(stream.length)
      }),
    )
  })
})
