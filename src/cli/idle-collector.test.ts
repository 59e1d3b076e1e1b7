import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { defaultIdleCollectorOptions, shouldCollect, startIdleCollector } from './idle-collector.ts'

const MiB = 1024 * 1024
const opts = defaultIdleCollectorOptions

describe('shouldCollect', () => {
  it('collects an idle interval after the threshold of growth', () => {
    expect(shouldCollect(0.005, 100 * MiB, 60 * MiB, opts)).toBe(true)
  })
  it('leaves a busy event loop alone, however much memory grew', () => {
    expect(shouldCollect(0.3, 200 * MiB, 60 * MiB, opts)).toBe(false)
  })
  it('leaves an idle process alone when memory barely grew', () => {
    expect(shouldCollect(0, 70 * MiB, 60 * MiB, opts)).toBe(false)
  })
})

describe('startIdleCollector', () => {
  it('frees dead ArrayBuffers once the event loop is idle', async () => {
    const collector = startIdleCollector({ intervalMs: 100, idleUtilization: 0.5, growthBytes: 8 * MiB })
    try {
      // 32 MiB of buffers that die at once: nothing allocates afterwards, so only a full collection frees them.
      let garbage: Buffer[] | undefined = Array.from({ length: 32 }, () => Buffer.alloc(MiB, 1))
      expect(process.memoryUsage().arrayBuffers).toBeGreaterThan(32 * MiB)
      garbage = undefined
      void garbage
      const deadline = Date.now() + 5_000
      while (collector.collections === 0 && Date.now() < deadline) await sleep(50)
      expect(collector.collections).toBeGreaterThan(0)
      expect(process.memoryUsage().arrayBuffers).toBeLessThan(16 * MiB)
    } finally {
      collector.stop()
    }
  })
})
