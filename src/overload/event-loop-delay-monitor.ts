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

  constructor(saturationMs: number) {
    this.#saturationMs = saturationMs
    this.#histogram.enable()
  }

  /** The pressure since the last call; `lateMs`: how late the caller's own sampling timer fired. */
  sample(lateMs: number): number {
    const h = this.#histogram
    const delayMs = h.count > 0 ? h.mean / 1e6 : lateMs
    h.reset()
    return delayMs / this.#saturationMs
  }

  close(): void {
    this.#histogram.disable()
  }
}
