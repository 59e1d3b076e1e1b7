// The soak's growth and traffic rules (bench/soak/verdict.ts) on synthetic series: a leak fails, a sawtooth or a step that levels off passes.

import { describe, expect, it } from 'vitest'
import type { Sample } from '../bench/soak/sampler.ts'
import {
  fullGcIndexes,
  GROWTH_RULES,
  type GrowthRule,
  judgeGrowth,
  judgeRssCeiling,
  judgeTraffic,
} from '../bench/soak/verdict.ts'

const rule = (metric: string): GrowthRule => GROWTH_RULES.find((r) => r.metric === metric)!

/**
 * 30 minutes of samples every 2 s: heap a sawtooth from `live(t)` up by 100 MiB, collected every 70 s
 * (the shape V8 gives at the soak's rate); RSS and handles as the functions say.
 */
function series(opts: {
  rss: (t: number) => number
  live: (t: number) => number
  handles: (t: number) => number
}): Sample[] {
  const samples: Sample[] = []
  for (let t = 0; t <= 1800; t += 2) {
    const sinceGc = t % 70
    const heap = opts.live(t) + (100 * sinceGc) / 70
    samples.push({
      t,
      rssMiB: opts.rss(t),
      heapMiB: heap,
      heapTotalMiB: heap + 10,
      handles: opts.handles(t),
      kinds: {},
    })
  }
  return samples
}

const noise = (t: number, amplitude: number): number => amplitude * Math.sin(t * 1.7)

describe('soak growth rules', () => {
  it('passes a steady proxy: heap sawtooth, RSS that climbed during warm-up, handles that wobble', () => {
    const samples = series({
      rss: (t) => (t < 80 ? 140 + (120 * t) / 80 : 260) + noise(t, 3),
      live: () => 40,
      handles: (t) => 150 + Math.round(noise(t, 15)),
    })
    for (const r of GROWTH_RULES) {
      const result = judgeGrowth(samples, 60, r)
      expect(result.points, r.metric).toBeGreaterThanOrEqual(2)
      expect(result.failed, r.metric).toBe(false)
    }
  })

  it('fails RSS, heap and handles that keep growing', () => {
    const samples = series({
      rss: (t) => 260 + (2 * t) / 60,
      live: (t) => 40 + t / 60,
      handles: (t) => 150 + Math.floor(t / 60),
    })
    expect(judgeGrowth(samples, 60, rule('rssMiB')).failed).toBe(true)
    expect(judgeGrowth(samples, 60, rule('heapMiB')).failed).toBe(true)
    expect(judgeGrowth(samples, 60, rule('handles')).failed).toBe(true)
  })

  it('does not judge RSS on a steady part under five minutes (V8 still sizing its heap), and holds it under the ceiling', () => {
    // A 2-minute run: RSS still rising after the first full collection, as V8 raises its old-generation limit.
    const short = series({
      rss: (t) => 180 + Math.max(0, t - 60) / 2,
      live: () => 40,
      handles: () => 150,
    }).filter((s) => s.t <= 120)
    const rss = judgeGrowth(short, 60, rule('rssMiB'))
    expect(rss.points).toBeGreaterThanOrEqual(2)
    expect(rss.judged).toBe(false)
    expect(rss.failed).toBe(false)
    expect(judgeRssCeiling(short, 60)).toBeUndefined()
    // A leak that passes the ceiling fails the short run all the same; before the warm-up ends it does not count.
    const leaking = short.map((s) => ({ ...s, rssMiB: s.rssMiB + s.t * 3 }))
    expect(judgeRssCeiling(leaking, 60)).toMatch(/above the 400 MiB ceiling/)
    expect(judgeRssCeiling(leaking, 200)).toBeUndefined()
  })

  it('passes a step that then stays flat (a pool that filled up)', () => {
    const samples = series({
      rss: (t) => (t < 900 ? 260 : 300),
      live: () => 40,
      handles: (t) => (t < 900 ? 150 : 190),
    })
    expect(judgeGrowth(samples, 60, rule('rssMiB')).failed).toBe(false)
    expect(judgeGrowth(samples, 60, rule('handles')).failed).toBe(false)
  })

  it('finds a full collection whose fall spreads over several samples (concurrent sweeping on a busy machine)', () => {
    const heaps = [40, 80, 120, 150, 130, 110, 90, 70, 50, 60, 70]
    const samples = heaps.map((heapMiB, i) => ({
      t: 60 + i * 2,
      rssMiB: 260,
      heapMiB,
      heapTotalMiB: 160,
      handles: 150,
      kinds: {},
    }))
    // No sample-to-sample fall is over 24 MiB, but from the peak of 150 the heap fell to 90 by t = 72.
    expect(fullGcIndexes(samples)).toEqual([6])
    const heap = judgeGrowth(samples, 60, rule('heapMiB'))
    expect(heap.steadyFrom).toBe(72)
    expect(heap.points).toBe(1)
  })

  it('does not judge the heap when no full collection followed the warm-up', () => {
    const samples = series({ rss: () => 200, live: () => 40, handles: () => 150 }).filter((s) => s.t < 100)
    const result = judgeGrowth(
      samples.map((s) => ({ ...s, heapMiB: 40 + s.t / 10 })),
      60,
      rule('heapMiB'),
    )
    expect(result.steadyFrom).toBeUndefined()
    expect(result.failed).toBe(false)
  })
})

describe('soak traffic rules', () => {
  const clean = { protocol: 'http1', sent: 1000, ok: 1000, failed: 0, reasons: new Map(), planned: 1000 }
  const sessions = {
    protocol: 'tcp',
    droppedUnexpectedly: 0,
    attemptsFailedOtherwise: 0,
    reconnectsTooSlow: 0,
    opened: 5,
  }

  it('passes when nothing was lost', () => {
    expect(judgeTraffic([clean], [sessions])).toEqual([])
  })

  it('fails one lost request, an unexplained drop, a failed connect with endpoints up, a slow reconnect, a short rate', () => {
    expect(
      judgeTraffic([{ ...clean, ok: 999, failed: 1, reasons: new Map([['UND_ERR_SOCKET', 1]]) }], []),
    ).toEqual(['http1: 1 of 1000 lost (1× UND_ERR_SOCKET)'])
    expect(judgeTraffic([], [{ ...sessions, droppedUnexpectedly: 1 }])).toHaveLength(1)
    expect(judgeTraffic([], [{ ...sessions, attemptsFailedOtherwise: 1 }])).toHaveLength(1)
    expect(judgeTraffic([], [{ ...sessions, reconnectsTooSlow: 1 }])).toHaveLength(1)
    expect(judgeTraffic([{ ...clean, sent: 800, ok: 800 }], [])).toEqual([
      'http1: only 800 answered of 1000 planned',
    ])
  })
})
