// A latency histogram over the last minute: a ring of per-second hdr histograms, merged over the asked window.

import { type Histogram, Int32Histogram } from 'hdr-histogram-js'
import type { LatencyQuantiles } from './live-api.ts'

import { WINDOW_SLOTS } from './live-limits.ts'

export { WINDOW_SLOTS }
/** Closed seconds a ring keeps: a window is the current second and the ones closed before it. */
export const CLOSED_SLOTS = WINDOW_SLOTS - 1

/** Latencies are recorded in microseconds, from 1 µs to an hour (a longer one counts as an hour). */
export const HIGHEST_LATENCY_US = 3_600_000_000

/**
 * The histograms' shape: two significant digits (a value is known within 1 %), fixed range, counts in a
 * flat Int32 array (a recordValue is an index and an increment).
 */
function newHistogram(): Int32Histogram {
  return new Int32Histogram(1, HIGHEST_LATENCY_US, 2)
}

/** The shape every row's histograms share: resolves a latency to its counts index once for all rows. */
const SHAPE = newHistogram()

/**
 * A latency resolved once for every row that records it: the value clamped to the histograms' range and
 * its counts index. hdr's recordValue computes the index with log2 and pow; a request recorded in four
 * rows computes it once.
 */
export class ResolvedLatency {
  value = 1
  index = 0

  /** Resolves `latencyUs` (clamped to 1 µs..HIGHEST_LATENCY_US) in place, and returns itself. */
  set(latencyUs: number): this {
    const value = latencyUs < 1 ? 1 : latencyUs > HIGHEST_LATENCY_US ? HIGHEST_LATENCY_US : latencyUs
    this.value = value
    this.index = SHAPE.countsArrayIndex(value)
    return this
  }
}

/** An empty histogram of the same shape, to merge windows (and other workers' windows) into. */
export function mergeHistogram(): Histogram {
  return newHistogram()
}

/** p50, p95 and p99 of `histogram` in milliseconds, or null when it is empty. */
export function quantilesMs(histogram: Histogram): LatencyQuantiles | null {
  if (histogram.totalCount === 0) return null
  return {
    p50: histogram.getValueAtPercentile(50) / 1000,
    p95: histogram.getValueAtPercentile(95) / 1000,
    p99: histogram.getValueAtPercentile(99) / 1000,
  }
}

/** The count a percentile must reach, as hdr's getValueAtPercentile computes it. */
function countAtPercentile(percentile: number, total: number): number {
  const fp = (percentile / 100) * total
  return Math.max(Math.ceil(fp - 2 ** (Math.floor(Math.log2(fp)) - 52)), 1)
}

/**
 * A closed second, kept sparse: the (counts index, count) pairs of the indexes it recorded, in a buffer
 * reused from one minute to the next. Packing a second this way reads the flat histogram's counts once;
 * hdr's PackedHistogram took ten times as long per second (its `add` resolves each index through a tree).
 */
class ClosedSecond {
  pairs = new Int32Array(64)
  length = 0

  /** Copies `from`'s non-zero counts (between its lowest and highest recorded value). */
  fill(from: Int32Histogram): void {
    const last = from.countsArrayIndex(from.maxValue)
    let n = 0
    for (let i = from.countsArrayIndex(from.minNonZeroValue); i <= last; i++) {
      const count = from.getCountAtIndex(i)
      if (count === 0) continue
      if (2 * n + 2 > this.pairs.length) {
        const grown = new Int32Array(this.pairs.length * 2)
        grown.set(this.pairs)
        this.pairs = grown
      }
      this.pairs[2 * n] = i
      this.pairs[2 * n + 1] = count
      n++
    }
    this.length = n
  }

  /**
   * p50, p95 and p99 in ms of the `total` counts it holds, in one pass over its pairs: hdr's
   * getValueAtPercentile scans the flat counts from index 0 for each quantile (thousands of indexes a row,
   * every second). Same rule as hdr: the first index whose running count reaches the percentile's count
   * (rounded up, less one ulp of float error), reported as the highest value equivalent to it.
   */
  quantilesMs(total: number, shape: Int32Histogram): LatencyQuantiles {
    const targets = [countAtPercentile(50, total), countAtPercentile(95, total), countAtPercentile(99, total)]
    const values = [0, 0, 0]
    let running = 0
    let next = 0
    for (let k = 0; k < this.length && next < 3; k++) {
      running += this.pairs[2 * k + 1]
      while (next < 3 && running >= targets[next]) {
        values[next] = shape.highestEquivalentValue(shape.valueFromIndex(this.pairs[2 * k])) / 1000
        next++
      }
    }
    return { p50: values[0], p95: values[1], p99: values[2] }
  }

  /** Adds its counts to `target` (a histogram of the same shape). */
  addTo(target: Histogram, shape: Int32Histogram): void {
    for (let k = 0; k < this.length; k++)
      target.recordValueWithCount(shape.valueFromIndex(this.pairs[2 * k]), this.pairs[2 * k + 1])
  }

  get bytes(): number {
    return this.pairs.byteLength
  }
}

/**
 * The current second records into one flat histogram; `rotate` (once a second) copies its non-zero counts
 * into the ring's slot for that second, dropping the second a minute older. Memory is bounded by the ring:
 * one flat histogram (14 KB) and at most CLOSED_SLOTS sparse seconds, allocated only for seconds that saw
 * a request, each at most two numbers per distinct latency bucket it saw.
 */
export class WindowedHistogram {
  readonly #current = newHistogram()
  /** Closed seconds, newest at `#newest`; undefined where a second saw nothing (or was never reached). */
  readonly #slots: (ClosedSecond | undefined)[] = new Array(CLOSED_SLOTS).fill(undefined)
  #newest = 0

  /** Records one latency in microseconds (clamped to the histogram's range). */
  record(latencyUs: number): void {
    this.recordResolved(new ResolvedLatency().set(latencyUs))
  }

  /** Records a latency already resolved: what recordValue does, without computing the index again. */
  recordResolved(latency: ResolvedLatency): void {
    const current = this.#current
    current.incrementCountAtIndex(latency.index)
    current.updateMinAndMax(latency.value)
    current.incrementTotalCount()
  }

  /** Requests recorded in the second not yet closed. */
  get currentCount(): number {
    return this.#current.totalCount
  }

  /**
   * Closes the current second: its quantiles (null when it saw nothing) are returned for the history,
   * and its counts move into the ring, replacing the oldest second's.
   */
  rotate(): LatencyQuantiles | null {
    this.#newest = (this.#newest + 1) % CLOSED_SLOTS
    const current = this.#current
    const total = current.totalCount
    if (total === 0) {
      // An idle second frees its slot: a row idle for a minute holds only the flat histogram.
      this.#slots[this.#newest] = undefined
      return null
    }
    let slot = this.#slots[this.#newest]
    if (slot === undefined) {
      slot = new ClosedSecond()
      this.#slots[this.#newest] = slot
    }
    slot.fill(current)
    current.reset()
    return slot.quantilesMs(total, current)
  }

  /** Adds the last `seconds` seconds into `target`: the current second and the `seconds - 1` closed before it. */
  addWindowTo(target: Histogram, seconds: number): void {
    if (this.#current.totalCount > 0) target.add(this.#current)
    const closed = Math.min(seconds - 1, CLOSED_SLOTS)
    for (let back = 0; back < closed; back++) {
      const slot = this.#slots[(this.#newest - back + CLOSED_SLOTS) % CLOSED_SLOTS]
      if (slot !== undefined) slot.addTo(target, this.#current)
    }
  }

  /** True when nothing was recorded in the last minute. */
  get idle(): boolean {
    return this.#current.totalCount === 0 && this.#slots.every((slot) => slot === undefined)
  }

  /** The bytes its histograms hold (hdr's estimate for the flat one). */
  get footprintBytes(): number {
    let bytes = this.#current.estimatedFootprintInBytes
    for (const slot of this.#slots) if (slot !== undefined) bytes += slot.bytes
    return bytes
  }
}
