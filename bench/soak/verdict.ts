// The soak's pass/fail rules: resource growth over the steady part of the run, and the traffic that must not be lost.

import type { Sample } from './sampler.ts'

export type Metric = 'rssMiB' | 'heapMiB' | 'handles'

/**
 * A metric fails when BOTH hold over its steady part: the least-squares slope over the second half of the
 * steady part is above `slopePerMinute`, and the last point is above the first steady one by more than
 * `noiseFloor`. The slope alone would flag a short run's noise; the growth alone would flag a step that then
 * stays flat (a pool that filled up). Together they mean "still growing at the end, by more than noise".
 */
export interface GrowthRule {
  readonly metric: Metric
  readonly label: string
  readonly unit: string
  readonly slopePerMinute: number
  readonly noiseFloor: number
  /** How the steady part is read: see `points`. */
  readonly series: 'window-median' | 'after-full-gc'
  /** The steady part starts after the warm-up minute, or also after V8's first full collection (`settles`). */
  readonly settles: 'after-warmup' | 'after-first-full-gc'
  /** A steady part shorter than this (seconds) is not judged: the metric may still be settling. */
  readonly minSteadySeconds: number
}

export const GROWTH_RULES: readonly GrowthRule[] = [
  {
    metric: 'rssMiB',
    label: 'RSS',
    unit: 'MiB',
    slopePerMinute: 1,
    noiseFloor: 16,
    series: 'window-median',
    settles: 'after-first-full-gc',
    // V8 goes on raising the old generation's limit, and RSS with it, for minutes after its first full
    // collection: one 10-minute run went 180 → 252 MiB over minutes 2–4 with the live set flat at 36–40 MiB,
    // then stayed within 4 MiB to the end, and the 2-minute run in CI read such a rise as growth. A shorter
    // run holds RSS under RSS_CEILING_MIB instead.
    minSteadySeconds: 300,
  },
  {
    metric: 'heapMiB',
    label: 'V8 heap used after full collections',
    unit: 'MiB',
    slopePerMinute: 0.5,
    noiseFloor: 8,
    series: 'after-full-gc',
    settles: 'after-first-full-gc',
    minSteadySeconds: 0,
  },
  {
    metric: 'handles',
    label: 'handles',
    unit: '',
    slopePerMinute: 0.5,
    noiseFloor: 20,
    series: 'window-median',
    settles: 'after-warmup',
    minSteadySeconds: 0,
  },
]

/**
 * The RSS no run may pass, judged on every sample after the warm-up whatever the run's length: about 1.5× the
 * plateau of the 30-minute run (~267 MiB). It catches in a short run what the growth rule needs minutes to
 * tell from V8's sizing: a leak of a few KiB per request passes it within two minutes at the soak's rate.
 */
export const RSS_CEILING_MIB = 400

/** The failure line when an RSS sample after the warm-up is above RSS_CEILING_MIB, or undefined. */
export function judgeRssCeiling(samples: readonly Sample[], warmupSeconds: number): string | undefined {
  const over = samples.find((s) => s.t >= warmupSeconds && s.rssMiB > RSS_CEILING_MIB)
  return over === undefined
    ? undefined
    : `RSS ${over.rssMiB.toFixed(1)} MiB at ${over.t.toFixed(0)} s, above the ${RSS_CEILING_MIB} MiB ceiling`
}

/** Windows the samples are grouped in (median of each) for the window-median series. */
export const WINDOW_SECONDS = 10

export interface Point {
  readonly t: number
  readonly value: number
}

/**
 * The samples at which a full (mark-compact) collection shows: heap used has fallen below two thirds of its
 * highest value since the previous one, and by more than the young generation holds (at most 24 MiB with
 * --max-semi-space-size=8, 12 with the proxy's 4), which scavenges alone cannot do. Measured from the running peak, not sample to sample:
 * on a busy machine V8 sweeps concurrently and the fall spreads over several samples.
 */
export function fullGcIndexes(samples: readonly Sample[]): number[] {
  const found: number[] = []
  let peak = Number.NEGATIVE_INFINITY
  // After a detection the peak follows the heap down until it rises again: the rest of the same sweep is not another one.
  let falling = false
  for (let i = 0; i < samples.length; i++) {
    const heap = samples[i].heapMiB
    if (falling && heap <= peak) {
      peak = heap
      continue
    }
    falling = false
    if (peak - heap > 24 && heap < (peak * 2) / 3) {
      found.push(i)
      peak = heap
      falling = true
    } else peak = Math.max(peak, heap)
  }
  return found
}

/**
 * Where the steady part starts: after `warmupSeconds`, and for RSS and heap also after V8's first full
 * collection from then on. Until it, V8 grows the old generation's limit with the load (here from ~40 to
 * ~150 MiB in about 80 s) and RSS climbs with it; the sawtooth's top, and RSS, level off from the first
 * mark-compact on. Undefined: no such collection happened.
 */
export function steadyFrom(
  samples: readonly Sample[],
  warmupSeconds: number,
  rule: GrowthRule,
): number | undefined {
  if (rule.settles === 'after-warmup') return warmupSeconds
  return fullGcIndexes(samples)
    .map((i) => samples[i].t)
    .find((t) => t >= warmupSeconds)
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

/**
 * The points a rule fits from `from` on: the median of each 10-s window (a burst of connections at the
 * sample instant is not growth), or, for the heap, its value right after each full collection (the live
 * set; between them heap used is a sawtooth of garbage that says nothing about leaks).
 */
export function points(samples: readonly Sample[], rule: GrowthRule, from: number): Point[] {
  if (rule.series === 'after-full-gc') {
    // Each cycle's trough: the lowest heap from one full collection to the next (the sweep may end a sample later).
    const gcs = fullGcIndexes(samples)
    const out: Point[] = []
    for (let k = 0; k < gcs.length; k++) {
      const cycle = samples.slice(gcs[k], gcs[k + 1] ?? samples.length)
      if (cycle[0].t < from) continue
      out.push({ t: cycle[0].t, value: Math.min(...cycle.map((s) => s[rule.metric])) })
    }
    return out
  }
  const groups = new Map<number, number[]>()
  for (const s of samples) {
    if (s.t < from) continue
    const key = Math.floor((s.t - from) / WINDOW_SECONDS)
    const values = groups.get(key)
    if (values === undefined) groups.set(key, [s[rule.metric]])
    else values.push(s[rule.metric])
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a - b)
    .map(([key, values]) => ({ t: from + (key + 0.5) * WINDOW_SECONDS, value: median(values) }))
}

/** Least-squares slope of value over t, per minute. */
export function slopePerMinute(fitted: readonly Point[]): number {
  if (fitted.length < 2) return 0
  const n = fitted.length
  const meanT = fitted.reduce((a, p) => a + p.t, 0) / n
  const meanV = fitted.reduce((a, p) => a + p.value, 0) / n
  let num = 0
  let den = 0
  for (const p of fitted) {
    num += (p.t - meanT) * (p.value - meanV)
    den += (p.t - meanT) ** 2
  }
  return den === 0 ? 0 : (num / den) * 60
}

export interface GrowthResult {
  readonly rule: GrowthRule
  /** Seconds into the run where the steady part began (undefined: it never did). */
  readonly steadyFrom: number | undefined
  /** Points in the steady part; under 2, the metric is not judged. */
  readonly points: number
  readonly slopePerMinute: number
  readonly growth: number
  /** False when the steady part was too short (under the rule's minSteadySeconds) or had under 2 points. */
  readonly judged: boolean
  readonly failed: boolean
}

export function judgeGrowth(
  samples: readonly Sample[],
  warmupSeconds: number,
  rule: GrowthRule,
): GrowthResult {
  const from = steadyFrom(samples, warmupSeconds, rule)
  const steady = from === undefined ? [] : points(samples, rule, from)
  // The second half by time: from the middle of the steady part to its end.
  const middle = steady.length === 0 ? 0 : (steady[0].t + steady[steady.length - 1].t) / 2
  const secondHalf = steady.filter((p) => p.t >= middle)
  const slope = slopePerMinute(secondHalf.length >= 2 ? secondHalf : steady)
  const growth = steady.length < 2 ? 0 : steady[steady.length - 1].value - steady[0].value
  const lastSample = samples.length === 0 ? 0 : samples[samples.length - 1].t
  const judged = steady.length >= 2 && from !== undefined && lastSample - from >= rule.minSteadySeconds
  return {
    rule,
    steadyFrom: from,
    points: steady.length,
    slopePerMinute: slope,
    growth,
    judged,
    failed: judged && slope > rule.slopePerMinute && growth > rule.noiseFloor,
  }
}

export function describeGrowth(r: GrowthResult): string {
  const unit = r.rule.unit === '' ? '' : ` ${r.rule.unit}`
  if (r.points < 2) {
    return `${r.rule.label}: not judged, ${r.points} point(s) in the steady part${r.steadyFrom === undefined ? ' (no full collection after the warm-up)' : ''}`
  }
  if (!r.judged) {
    return `${r.rule.label}: not judged, the steady part from ${r.steadyFrom?.toFixed(0)} s is under ${r.rule.minSteadySeconds} s (slope ${r.slopePerMinute.toFixed(2)}${unit}/min, ${r.growth >= 0 ? '+' : ''}${r.growth.toFixed(1)}${unit})`
  }
  return (
    `${r.rule.label}: ${r.points} points from ${r.steadyFrom?.toFixed(0)} s; slope ${r.slopePerMinute.toFixed(2)}${unit}/min over the second half ` +
    `(limit ${r.rule.slopePerMinute}${unit}/min), last point ${r.growth >= 0 ? '+' : ''}${r.growth.toFixed(1)}${unit} ` +
    `over the first (noise floor ${r.rule.noiseFloor}${unit})`
  )
}

/** What the traffic rules read. */
export interface TrafficSummary {
  readonly protocol: string
  readonly sent: number
  readonly ok: number
  readonly failed: number
  readonly reasons: ReadonlyMap<string, number>
  /** Requests (or messages) the schedule meant to send. */
  readonly planned: number
}

export interface SessionSummary {
  readonly protocol: string
  readonly droppedUnexpectedly: number
  readonly attemptsFailedOtherwise: number
  readonly reconnectsTooSlow: number
  readonly opened: number
}

/** A reload every HTTP protocol must see within this. */
export const RELOAD_VISIBLE_WITHIN_MS = 10_000

/**
 * The traffic rules, as failure lines (none: pass):
 * - HTTP/1.1, HTTP/2 and gRPC requests are idempotent and retried, and WebSocket/TCP messages travel on
 *   connections whose endpoint is up: not one may fail. A message in flight on a connection whose endpoint
 *   was killed is dropped, counted apart, and allowed.
 * - A WebSocket or TCP connection may close only when its own endpoint was killed after it opened, and must be
 *   open again within the reconnect limit; an attempt to connect may fail only while an endpoint is down (or
 *   in the 2 s after it is back).
 * - Every protocol carries at least 90 % of the requests its schedule planned (a client that fell behind
 *   would hide failures behind a lower rate).
 */
export function judgeTraffic(
  traffic: readonly TrafficSummary[],
  sessions: readonly SessionSummary[],
): string[] {
  const failures: string[] = []
  for (const t of traffic) {
    if (t.failed > 0) {
      const reasons = [...t.reasons].map(([reason, n]) => `${n}× ${reason}`).join(', ')
      failures.push(`${t.protocol}: ${t.failed} of ${t.sent} lost (${reasons})`)
    }
    if (t.ok < 0.9 * t.planned) failures.push(`${t.protocol}: only ${t.ok} answered of ${t.planned} planned`)
  }
  for (const s of sessions) {
    if (s.droppedUnexpectedly > 0) {
      failures.push(`${s.protocol}: ${s.droppedUnexpectedly} connection(s) closed while their endpoint ran`)
    }
    if (s.attemptsFailedOtherwise > 0) {
      failures.push(
        `${s.protocol}: ${s.attemptsFailedOtherwise} connection attempt(s) failed with every endpoint up`,
      )
    }
    if (s.reconnectsTooSlow > 0) {
      failures.push(
        `${s.protocol}: ${s.reconnectsTooSlow} dropped connection(s) not reopened within the limit`,
      )
    }
    if (s.opened === 0) failures.push(`${s.protocol}: no connection ever opened`)
  }
  return failures
}
