// Preloaded into a proxy process by tests only (NODE_OPTIONS=--import): SIGUSR2 raises a fatal error in it, or in one of its worker threads.

import { BroadcastChannel, isMainThread, workerData } from 'node:worker_threads'

/** The channel on which the main thread tells worker thread `index` to fail (signals reach only the main thread). */
const crashChannel = 'outrigger-test-crash'

function fail(): void {
  if (process.env.OUTRIGGER_TEST_CRASH === 'rejection') {
    void Promise.reject(new Error('test: rejected from a SIGUSR2 handler'))
    return
  }
  throw new Error('test: thrown from a SIGUSR2 handler')
}

/**
 * On SIGUSR2 the process throws from the signal handler (an uncaught exception), or with
 * OUTRIGGER_TEST_CRASH=rejection rejects a promise nobody handles. With OUTRIGGER_TEST_CRASH_WORKER=<i>
 * the main thread instead tells worker thread i (of a `concurrency` > 1 proxy; this preload runs in each
 * worker too) to fail the same way.
 */
if (isMainThread) {
  process.on('SIGUSR2', () => {
    const worker = process.env.OUTRIGGER_TEST_CRASH_WORKER
    if (worker === undefined) return fail()
    const channel = new BroadcastChannel(crashChannel)
    channel.postMessage(Number(worker))
    channel.close()
  })
} else {
  const channel = new BroadcastChannel(crashChannel)
  channel.unref()
  channel.onmessage = (event) => {
    if ((event as MessageEvent).data === (workerData as { index: number }).index) fail()
  }
}
