// The event-loop delay monitor on this thread's real loop: quiet while idle, high after the loop is blocked.

import { describe, expect, it } from 'vitest'
import { EventLoopDelayMonitor } from './event-loop-delay-monitor.ts'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

function blockFor(ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // a loop turn that does not end: what a CPU-heavy request or reload does
  }
}

describe('event-loop delay monitor', () => {
  it('reads the mean delay since the last sample against the saturation delay', async () => {
    const monitor = new EventLoopDelayMonitor(100)
    try {
      await sleep(200)
      monitor.sample(0)
      await sleep(200)
      const idle = monitor.sample(0)
      blockFor(400)
      await sleep(50)
      const blocked = monitor.sample(0)
      // One sample of ~400 ms among a few of ~0: a mean of tens of milliseconds, at least.
      expect(blocked).toBeGreaterThan(0.3)
      expect(blocked).toBeGreaterThan(idle * 5)
    } finally {
      monitor.close()
    }
  })

  it('a loop blocked for the whole interval recorded nothing: the sampler’s own lateness is the delay', () => {
    const monitor = new EventLoopDelayMonitor(100)
    try {
      monitor.sample(0)
      expect(monitor.sample(250)).toBe(2.5)
    } finally {
      monitor.close()
    }
  })
})
