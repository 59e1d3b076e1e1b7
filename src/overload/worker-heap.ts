// The worker threads' share of the proxy's heap budget: the old generation one node thread would get, split evenly.

import type { ResourceLimits } from 'node:worker_threads'
import { oldGenerationLimit } from './heap-monitor.ts'

const MiB = 1024 * 1024

/** Below this a worker's old generation cannot hold a loaded proxy and much traffic. */
export const minWorkerOldGenerationMb = 64

/**
 * Each of `workers` worker threads' resourceLimits. Node gives every isolate, a worker's too, the heap
 * V8 sizes from the container's memory limit (or from the machine's memory, or `--max-old-space-size`);
 * N workers would then claim N times the budget a container was sized for, and the kernel, not V8,
 * would stop the proxy. So the main thread's own old-generation limit is the budget, and each worker
 * gets an equal share, never less than minWorkerOldGenerationMb. `budgetBytes` is for tests.
 */
export function workerResourceLimits(workers: number, budgetBytes = oldGenerationLimit()): ResourceLimits {
  const share = Math.floor(budgetBytes / MiB / Math.max(1, workers))
  return { maxOldGenerationSizeMb: Math.max(minWorkerOldGenerationMb, share) }
}
