// This thread's event-loop delay over the last sample interval, as a pressure against a saturation delay.

import { monitorEventLoopDelay } from 'node:perf_hooks'

/** The histogram's timer resolution: fine enough to see a loop turn of tens of milliseconds. */
const resolutionMs = 10

/**
 * Node's own event-loop delay timer (a 10 ms libuv timer in C++, perf_hooks.monitorEventLoopDelay),
 * of which only the count of turns is read: the mean delay since the last sample, over the delay that
 * counts as saturated. The histogram's mean would walk HdrHistogram's buckets at every sample; the
 * count is one field, and gives the same mean, because the timer's turns follow each other without a
 * gap: over an interval, their lengths (each the resolution plus its delay) add up to the interval.
 * A loop blocked for the whole interval ended no turn; then the sampling timer's own lateness is the delay.
 */
export class EventLoopDelayMonitor {
  readonly #histogram: ReturnType<typeof monitorEventLoopDelay> = monitorEventLoopDelay({
    resolution: resolutionMs,
  })
  readonly #saturationMs: number
  /** The histogram's count of turns at the last sample. */
  #count = 0

  constructor(saturationMs: number) {
    this.#saturationMs = saturationMs
    this.#histogram.enable()
  }

  /**
   * The pressure since the last call; `elapsedMs`: the time since the last call, `lateMs`: how late the
   * caller's own sampling timer fired.
   */
  sample(elapsedMs: number, lateMs: number): number {
    // Never reset: the running count is enough, and node drops the first turn after a reset.
    const count = this.#histogram.count
    const turns = count - this.#count
    this.#count = count
    // The interval's edges cut at most a turn at each end: a few percent of the mean at 10 ms turns.
    const delayMs = turns > 0 ? Math.max(0, elapsedMs / turns - resolutionMs) : lateMs
    return delayMs / this.#saturationMs
  }

  close(): void {
    this.#histogram.disable()
  }
}
