// The event-loop delay monitor on this thread's real loop: quiet while idle, high after the loop is blocked, and the histogram's own mean.

import { monitorEventLoopDelay } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { EventLoopDelayMonitor } from './event-loop-delay-monitor.ts'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function blockFor(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // a loop turn that does not end: what a CPU-heavy request or reload does
  }
}

/** Samples `monitor` as the manager does: the time since its last sample, and no lateness. */
function sampler(monitor: EventLoopDelayMonitor): () => number {
  let last = performance.now()
  return () => {
    const now = performance.now()
    const pressure = monitor.sample(now - last, 0)
    last = now
    return pressure
  }
}

describe('event-loop delay monitor', () => {
  it('reads the mean delay since the last sample against the saturation delay', async () => {
    const monitor = new EventLoopDelayMonitor(100)
    try {
      const sample = sampler(monitor)
      await sleep(200)
      sample()
      await sleep(200)
      const idle = sample()
      blockFor(400)
      await sleep(50)
      const blocked = sample()
      // One turn of ~400 ms among a few of ~10: a mean of tens of milliseconds, at least.
      expect(idle).toBeLessThan(0.1)
      expect(blocked).toBeGreaterThan(0.3)
      expect(blocked).toBeGreaterThan(idle * 5)
    } finally {
      monitor.close()
    }
  })

  it('gives the mean of node’s own histogram of the same turns, without walking its buckets', async () => {
    const monitor = new EventLoopDelayMonitor(1)
    const histogram = monitorEventLoopDelay({ resolution: 10 })
    histogram.enable()
    try {
      const sample = sampler(monitor)
      await sleep(100)
      sample()
      // The histogram's running totals at the same moment (a reset would drop its next turn).
      const countBefore = histogram.count
      const sumBefore = histogram.mean * countBefore
      // Turns of 10 to 60 ms late, interleaved with idle ones.
      for (const ms of [60, 0, 30, 0, 10, 50, 0, 20]) {
        blockFor(ms)
        await sleep(15)
      }
      const counted = sample()
      // The histogram records whole turns (resolution plus delay), in nanoseconds.
      const turns = histogram.count - countBefore
      const fromMean = (histogram.mean * histogram.count - sumBefore) / turns / 1e6 - 10
      expect(fromMean).toBeGreaterThan(5)
      expect(Math.abs(counted - fromMean)).toBeLessThan(Math.max(3, fromMean * 0.25))
    } finally {
      histogram.disable()
      monitor.close()
    }
  })

  it('a loop blocked for the whole interval ended no turn: the sampler’s own lateness is the delay', () => {
    const monitor = new EventLoopDelayMonitor(100)
    try {
      monitor.sample(0, 0)
      expect(monitor.sample(500, 250)).toBe(2.5)
    } finally {
      monitor.close()
    }
  })
})
