// The worker threads' heap shares, and that a worker thread really gets the limit it was given.

import { getHeapStatistics } from 'node:v8'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { maxOldSpaceFlagMb } from './heap-monitor.ts'
import { minWorkerOldGenerationMb, workerResourceLimits } from './worker-heap.ts'

const MiB = 1024 * 1024

describe('worker heap shares', () => {
  it('splits the budget evenly, with a floor', () => {
    expect(workerResourceLimits(4, 1024 * MiB)).toEqual({ maxOldGenerationSizeMb: 256 })
    expect(workerResourceLimits(3, 1000 * MiB)).toEqual({ maxOldGenerationSizeMb: 333 })
    expect(workerResourceLimits(8, 256 * MiB)).toEqual({ maxOldGenerationSizeMb: minWorkerOldGenerationMb })
  })

  it('reads --max-old-space-size from the arguments or NODE_OPTIONS, the last one winning', () => {
    expect(maxOldSpaceFlagMb([], '')).toBeUndefined()
    expect(maxOldSpaceFlagMb(['--max-old-space-size=300'], '')).toBe(300)
    expect(maxOldSpaceFlagMb(['--max_old_space_size=300'], '--inspect --max-old-space-size=128')).toBe(128)
  })

  it('a worker started with its share reports that old generation and reads it back', async () => {
    const limits = workerResourceLimits(2, 256 * MiB)
    const seen = await new Promise<{ old: number; limit: number }>((resolve, reject) => {
      const worker = new Worker(
        `const { parentPort, resourceLimits } = require('node:worker_threads')
         const { getHeapStatistics } = require('node:v8')
         parentPort.postMessage({ old: resourceLimits.maxOldGenerationSizeMb, limit: getHeapStatistics().heap_size_limit })`,
        { eval: true, resourceLimits: limits },
      )
      worker.once('message', resolve)
      worker.once('error', reject)
    })
    expect(seen.old).toBe(128)
    // V8's heap limit counts the young generation too: more than the share, less than this thread's.
    expect(seen.limit).toBeGreaterThan(128 * MiB)
    expect(seen.limit).toBeLessThan(getHeapStatistics().heap_size_limit)
  })
})
