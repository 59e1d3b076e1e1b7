// Unit tests of the windowed heavy hitters: seconds merged over the asked window, old seconds forgotten, memory bounded.

import { describe, expect, it } from 'vitest'
import { clampWindow, HEAVY_HITTERS_CAPACITY, HeavyHitters, MAX_TOP_WINDOW_SECONDS } from './heavy-hitters.ts'

const t0 = 1_700_000_000_000

describe('HeavyHitters', () => {
  it('merges the seconds of the window, the current one included, and leaves out older ones', () => {
    const top = new HeavyHitters()
    // One request a second on /a for 20 seconds; /b only in the first 5.
    for (let s = 0; s < 20; s++) {
      top.count('inbound', 'GET', 'app', '/a', true, s, t0 + s * 1000 + 500)
      if (s < 5) top.count('inbound', 'GET', 'app', '/b', s % 2 === 0, 1, t0 + s * 1000 + 500)
    }
    const now = t0 + 19 * 1000 + 900
    const last10 = top.summary(10, now)
    expect(last10.entries.map((e) => [e.path, e.count, e.countError])).toEqual([['/a', 10, 0]])
    expect(last10.entries[0]).toMatchObject({ bestMs: 10, worstMs: 19, lastMs: 19 })
    const last20 = top.summary(20, now)
    expect(last20.entries.map((e) => [e.path, e.count, e.successes])).toEqual([
      ['/a', 20, 20],
      ['/b', 5, 3],
    ])
    // A second later the oldest second has left a 20 s window.
    expect(top.summary(20, now + 1000).entries.find((e) => e.path === '/a')?.count).toBe(19)
  })

  it('reuses a slot when its second comes round again, so only the last minute counts', () => {
    const top = new HeavyHitters()
    top.count('inbound', 'GET', 'app', '/old', true, 1, t0)
    const later = t0 + MAX_TOP_WINDOW_SECONDS * 1000
    top.count('inbound', 'GET', 'app', '/new', true, 1, later)
    expect(top.summary(MAX_TOP_WINDOW_SECONDS, later).entries.map((e) => e.path)).toEqual(['/new'])
  })

  it('stays within ring × capacity entries under a flood of distinct paths over a minute', () => {
    const top = new HeavyHitters()
    for (let i = 0; i < 120_000; i++) {
      const at = t0 + Math.floor(i / 1000) * 1000
      top.count('outbound', 'GET', 'app', `/flood/${i}`, true, 1, at)
      if (i % 4 === 0) top.count('outbound', 'GET', 'app', '/heavy', true, 1, at)
    }
    expect(top.entriesHeld).toBeLessThanOrEqual(MAX_TOP_WINDOW_SECONDS * HEAVY_HITTERS_CAPACITY)
    const summary = top.summary(60, t0 + 119_500)
    expect(summary.entries.length).toBe(HEAVY_HITTERS_CAPACITY)
    expect(summary.entries[0]?.path).toBe('/heavy')
    expect(summary.entries[0]?.count).toBeGreaterThanOrEqual(60 * 250)
  })

  it('clamps the window to what the ring keeps', () => {
    expect(clampWindow(0)).toBe(1)
    expect(clampWindow(10)).toBe(10)
    expect(clampWindow(3600)).toBe(MAX_TOP_WINDOW_SECONDS)
    expect(clampWindow(Number.NaN)).toBe(MAX_TOP_WINDOW_SECONDS)
  })
})
