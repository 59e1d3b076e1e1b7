// Runs one full garbage collection when the proxy falls idle after its memory grew, so a burst's garbage does not stay resident.
//
// V8 collects the old generation when it grows past a limit, and its memory reducer only starts after
// such a collection. The buffers of a burst of traffic (bodies, socket reads) are promoted to the old
// generation and die there; once the burst is over an idle sidecar allocates too little to reach the
// limit, so tens of MiB of dead ArrayBuffers stay resident for as long as it stays quiet
// (bench/results/idle-gc-2026-12-04.md). Here, every few seconds, an interval in which the event loop
// was almost never busy, after the live heap and buffers grew by more than a threshold since the last
// collection, gets one full collection. Under load the event loop is busy and nothing is done.

import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

export interface IdleCollectorOptions {
  /** How often the event loop's utilization and the memory are sampled. */
  readonly intervalMs: number
  /** An interval whose event-loop utilization is below this counts as idle. */
  readonly idleUtilization: number
  /** Heap used + ArrayBuffers must have grown by this much since the last collection. */
  readonly growthBytes: number
}

export const defaultIdleCollectorOptions: IdleCollectorOptions = {
  intervalMs: 5_000,
  idleUtilization: 0.02,
  growthBytes: 16 * 1024 * 1024,
}

export interface IdleCollector {
  /** Full collections run so far. */
  readonly collections: number
  stop(): void
}

/** True when an interval was idle and memory grew enough since the last collection to be worth one. */
export function shouldCollect(
  utilization: number,
  retainedBytes: number,
  baselineBytes: number,
  opts: IdleCollectorOptions,
): boolean {
  return utilization < opts.idleUtilization && retainedBytes - baselineBytes > opts.growthBytes
}

/** What a full collection can give back: the JavaScript heap in use and the ArrayBuffers it holds. */
function retainedBytes(): number {
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

/** V8's gc(): the global one when node runs with --expose-gc, else one from a context made after enabling it. */
function fullCollection(): () => void {
  const existing = (globalThis as { gc?: () => void }).gc
  if (existing !== undefined) return existing
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

export function startIdleCollector(opts: IdleCollectorOptions = defaultIdleCollectorOptions): IdleCollector {
  const gc = fullCollection()
  let baseline = retainedBytes()
  let mark = performance.eventLoopUtilization()
  let collections = 0
  const timer = setInterval(() => {
    const utilization = performance.eventLoopUtilization(mark).utilization
    mark = performance.eventLoopUtilization()
    const retained = retainedBytes()
    if (shouldCollect(utilization, retained, baseline, opts)) {
      gc()
      collections++
      baseline = retainedBytes()
      // The collection's own time is not load: the next interval starts after it.
      mark = performance.eventLoopUtilization()
    } else if (retained < baseline) {
      // V8 collected on its own: growth counts from what is live now.
      baseline = retained
    }
  }, opts.intervalMs)
  timer.unref()
  return {
    get collections() {
      return collections
    },
    stop: () => clearInterval(timer),
  }
}
