// A proxy worker thread: serves the bootstrap the supervisor read, with the SharedCounters table it created.

import { parentPort, workerData } from 'node:worker_threads'
import { SharedCounters } from '../shared/shared-counters.ts'
import { FatalErrors } from './fatal-errors.ts'
import type { WorkerData } from './supervisor.ts'

// A fatal error drains this worker and ends it non-zero; the supervisor restarts it.
const fatalErrors = new FatalErrors()
const data = workerData as WorkerData
if (parentPort === null)
  throw new Error('worker-thread.ts runs only as a worker thread (src/cli/supervisor.ts)')
const { serve } = await import('./serve.ts')
const code = await serve(data.bootstrap, fatalErrors, {
  index: data.index,
  count: data.count,
  counters: SharedCounters.attach(data.counters),
  port: parentPort,
})
// Ends this thread only; the supervisor sees the code.
process.exit(code)
