// Heavy-hitters summaries as plain data (they cross worker threads) and their merge: seconds into a window, workers into the proxy.

import type { TrafficDirection } from '../telemetry/request-record.ts'

/** One key of a Space-Saving summary and what is known of its requests. */
export interface HeavyHitter {
  readonly direction: TrafficDirection
  readonly method: string
  readonly authority: string
  readonly path: string
  /** At least the key's true request count, at most `countError` above it. */
  readonly count: number
  readonly countError: number
  /** Successes among the `count - countError` requests seen (those are exactly counted). */
  readonly successes: number
  readonly bestMs: number
  readonly worstMs: number
  readonly lastMs: number
  /** Wall-clock ms when the request of `lastMs` ended. */
  readonly lastAt: number
}

/** A summary: its keys, and the most requests a key it does not hold may have had (0: it holds every key). */
export interface HeavyHitterSummary {
  readonly entries: readonly HeavyHitter[]
  readonly untrackedAtMost: number
}

export const emptySummary: HeavyHitterSummary = { entries: [], untrackedAtMost: 0 }

interface Merged {
  direction: TrafficDirection
  method: string
  authority: string
  path: string
  count: number
  countError: number
  successes: number
  bestMs: number
  worstMs: number
  lastMs: number
  lastAt: number
  /** The sum of `untrackedAtMost` of the summaries that held this key. */
  heldBound: number
}

/**
 * Merges summaries of disjoint traffic (seconds of a window, worker threads) into one of at most
 * `capacity` keys (Cafaro, Pulimeno, Tempesta, "A parallel space saving algorithm for frequent items and the
 * Hurwitz zeta distribution", 2016; Agarwal et al., "Mergeable summaries", 2012): a key's count is the sum of
 * its counts, plus, for each summary that does not hold it, the most that summary's untracked keys may have
 * had, which is added to its error too. So a count stays an upper bound, `count - countError` a lower bound
 * (the requests seen), and a summary that never evicted adds nothing: without eviction the merge is exact.
 * The `capacity` largest counts are kept; a dropped key's count bounds the result's untracked keys.
 */
export function mergeSummaries(
  summaries: readonly HeavyHitterSummary[],
  capacity: number,
): HeavyHitterSummary {
  let untrackedTotal = 0
  for (const s of summaries) untrackedTotal += s.untrackedAtMost
  const byKey = new Map<string, Merged>()
  for (const s of summaries) {
    for (const e of s.entries) {
      // No header value or path holds a line feed (the codecs refuse one), so it cannot join two keys into one.
      const key = `${e.direction}\n${e.method}\n${e.authority}\n${e.path}`
      const m = byKey.get(key)
      if (m === undefined) {
        byKey.set(key, { ...e, heldBound: s.untrackedAtMost })
        continue
      }
      m.count += e.count
      m.countError += e.countError
      m.successes += e.successes
      m.heldBound += s.untrackedAtMost
      if (e.bestMs < m.bestMs) m.bestMs = e.bestMs
      if (e.worstMs > m.worstMs) m.worstMs = e.worstMs
      if (e.lastAt > m.lastAt) {
        m.lastAt = e.lastAt
        m.lastMs = e.lastMs
      }
    }
  }
  const entries: HeavyHitter[] = []
  for (const m of byKey.values()) {
    const missedBound = untrackedTotal - m.heldBound
    entries.push({
      direction: m.direction,
      method: m.method,
      authority: m.authority,
      path: m.path,
      count: m.count + missedBound,
      countError: m.countError + missedBound,
      successes: m.successes,
      bestMs: m.bestMs,
      worstMs: m.worstMs,
      lastMs: m.lastMs,
      lastAt: m.lastAt,
    })
  }
  entries.sort(byCountDescending)
  if (entries.length <= capacity) return { entries, untrackedAtMost: untrackedTotal }
  const dropped = entries[capacity] as HeavyHitter
  return {
    entries: entries.slice(0, capacity),
    untrackedAtMost: Math.max(untrackedTotal, dropped.count),
  }
}

/** Larger count first; then fewer errors (the surer count), then by key so the order is stable. */
export function byCountDescending(a: HeavyHitter, b: HeavyHitter): number {
  return (
    b.count - a.count ||
    a.countError - b.countError ||
    compareText(a.authority, b.authority) ||
    compareText(a.path, b.path) ||
    compareText(a.method, b.method) ||
    compareText(a.direction, b.direction)
  )
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
