// This thread's event-loop delay over the last sample interval, as a pressure against a saturation delay.

import { monitorEventLoopDelay } from 'node:perf_hooks'

/** The histogram's timer resolution: fine enough to see a loop turn of tens of milliseconds. */
const resolutionMs = 10

/**
 * Node's own event-loop delay histogram (a libuv timer in C++, perf_hooks.monitorEventLoopDelay): the
 * mean delay since the last sample, over the delay that counts as saturated. A loop blocked for the
 * whole interval records no sample; then the sampling timer's own lateness is the delay.
 */
export class EventLoopDelayMonitor {
  readonly #histogram: ReturnType<typeof monitorEventLoopDelay> = monitorEventLoopDelay({
    resolution: resolutionMs,
  })
  readonly #saturationMs: number
  /** The histogram's count and sum of delays (ns) at the last sample. */
  #count = 0
  #sumNs = 0

  constructor(saturationMs: number) {
    this.#saturationMs = saturationMs
    this.#histogram.enable()
  }

  /** The pressure since the last call; `lateMs`: how late the caller's own sampling timer fired. */
  sample(lateMs: number): number {
    // Never reset: node drops the first turn after a reset, which may be the one that was blocked. The
    // interval's mean comes from the running totals instead.
    const h = this.#histogram
    const count = h.count
    const sumNs = h.mean * count
    const turns = count - this.#count
    const intervalMeanMs = turns > 0 ? (sumNs - this.#sumNs) / turns / 1e6 : 0
    this.#count = count
    this.#sumNs = sumNs
    // Each turn is the whole time between two of its timer's callbacks: the resolution plus the delay.
    const delayMs = turns > 0 ? Math.max(0, intervalMeanMs - resolutionMs) : lateMs
    return delayMs / this.#saturationMs
  }

  close(): void {
    this.#histogram.disable()
  }
}
