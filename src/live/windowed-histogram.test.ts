// Unit tests of the windowed latency histogram: the ring's rotation, merging a window, bounded memory.

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  HIGHEST_LATENCY_US,
  mergeHistogram,
  quantilesMs,
  WINDOW_SLOTS,
  WindowedHistogram,
} from './windowed-histogram.ts'

function windowOf(h: WindowedHistogram, seconds: number) {
  const merged = mergeHistogram()
  h.addWindowTo(merged, seconds)
  return merged
}

describe('WindowedHistogram', () => {
  it('merges the current second and the closed ones the window covers', () => {
    const h = new WindowedHistogram()
    for (let i = 0; i < 100; i++) h.record(10_000) // 10 ms, three seconds ago
    h.rotate()
    for (let i = 0; i < 100; i++) h.record(20_000)
    h.rotate()
    h.rotate()
    for (let i = 0; i < 50; i++) h.record(30_000) // the current second
    expect(windowOf(h, 1).totalCount).toBe(50)
    expect(windowOf(h, 2).totalCount).toBe(50)
    expect(windowOf(h, 3).totalCount).toBe(150)
    expect(windowOf(h, 4).totalCount).toBe(250)
    const q = quantilesMs(windowOf(h, 4))
    expect(q?.p50).toBeCloseTo(20, 0)
    expect(q?.p99).toBeCloseTo(30, 0)
  })

  it('returns each closed second quantiles, null for an idle second', () => {
    const h = new WindowedHistogram()
    for (let v = 1; v <= 1000; v++) h.record(v * 1000) // 1..1000 ms
    const q = h.rotate()
    expect(q?.p50).toBeGreaterThanOrEqual(495)
    expect(q?.p50).toBeLessThanOrEqual(505)
    expect(q?.p99).toBeGreaterThanOrEqual(985)
    expect(h.rotate()).toBeNull()
  })

  it("gives a closed second's quantiles exactly as hdr's getValueAtPercentile does on the same values", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 2 * HIGHEST_LATENCY_US, noNaN: true }), {
          minLength: 1,
          maxLength: 400,
        }),
        (latencies) => {
          const h = new WindowedHistogram()
          const reference = mergeHistogram()
          for (const us of latencies) {
            h.record(us)
            reference.recordValue(Math.min(Math.max(us, 1), HIGHEST_LATENCY_US))
          }
          expect(h.rotate()).toEqual(quantilesMs(reference))
        },
      ),
      { numRuns: 300 },
    )
  })

  it('forgets a second once the ring has gone round', () => {
    const h = new WindowedHistogram()
    h.record(5_000)
    for (let i = 0; i < WINDOW_SLOTS - 1; i++) h.rotate()
    expect(windowOf(h, WINDOW_SLOTS).totalCount).toBe(1)
    h.rotate()
    expect(windowOf(h, WINDOW_SLOTS).totalCount).toBe(0)
    expect(h.idle).toBe(true)
  })

  it('clamps values outside its range instead of throwing', () => {
    const h = new WindowedHistogram()
    h.record(0)
    h.record(HIGHEST_LATENCY_US * 10)
    expect(windowOf(h, 1).totalCount).toBe(2)
    expect(windowOf(h, 1).maxValue).toBeLessThanOrEqual(HIGHEST_LATENCY_US * 1.01)
  })

  it('keeps bounded memory: ten minutes of widely spread latencies cost no more than one minute', () => {
    const h = new WindowedHistogram()
    let seed = 1
    const random = () => {
      seed = (seed * 48271) % 2147483647
      return seed / 2147483647
    }
    const footprints: number[] = []
    for (let second = 0; second < 600; second++) {
      for (let i = 0; i < 200; i++) h.record(Math.floor(10 ** (1 + random() * 7)))
      h.rotate()
      if (second === 59 || second === 599) footprints.push(h.footprintBytes)
    }
    // A full ring: one flat histogram and fifty-nine sparse seconds, however long it runs.
    expect(footprints[1]).toBeLessThanOrEqual(footprints[0] * 1.1)
    expect(footprints[1]).toBeLessThan(1_000_000)
    // An idle minute frees every closed second.
    for (let i = 0; i < WINDOW_SLOTS; i++) h.rotate()
    expect(h.footprintBytes).toBeLessThan(20_000)
  })
})
