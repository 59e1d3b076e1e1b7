// Runs N proxy worker threads that share the listener ports (SO_REUSEPORT) and one SharedCounters table, and keeps them running.

import { Worker } from 'node:worker_threads'
import type { Bootstrap } from '../bootstrap/schema.ts'
import { workerResourceLimits } from '../overload/worker-heap.ts'
import { SharedCounters } from '../shared/shared-counters.ts'
import { log } from '../telemetry/log.ts'
import { FATAL_EXIT_CODE, type FatalErrors } from './fatal-errors.ts'

/**
 * Messages from a worker thread to the supervisor: started, with whether every traffic listener bound
 * (readiness needs every worker's); and the worker link's (`cli/worker-link.ts`): worker 0 gathers a
 * topic from the others (`gather`, each answers with `answer`) or broadcasts to them, and any worker
 * may send worker 0 a message (`to-worker-zero`).
 */
export type WorkerReport =
  | { type: 'ready'; listening: boolean }
  | { type: 'gather'; id: number; topic: string; query: unknown }
  | { type: 'answer'; id: number; data: unknown }
  | { type: 'broadcast'; topic: string; payload: unknown }
  | { type: 'to-worker-zero'; topic: string; payload: unknown }
/** Messages from the supervisor to a worker thread. */
export type SupervisorCommand =
  | { type: 'siblings'; ready: boolean }
  | { type: 'drain' }
  | { type: 'quit' }
  | { type: 'reopenAccessLogs' }
  | { type: 'ask'; id: number; topic: string; query: unknown }
  | { type: 'gathered'; id: number; answers: unknown[] }
  | { type: 'broadcast'; topic: string; payload: unknown }
  | { type: 'from-worker'; topic: string; payload: unknown; worker: number }

/** A gather waits this long for a worker's answer; one that has not answered by then is left out. */
const gatherTimeoutMs = 2_000

/** What a worker thread is given (its workerData). */
export interface WorkerData {
  /** The bootstrap the supervisor read (plain data): a worker does not read it again, nor load yaml or zod. */
  readonly bootstrap: Bootstrap
  readonly index: number
  readonly count: number
  readonly counters: SharedArrayBuffer
}

/** A worker that crashes this soon after its start is not restarted again (the config is likely bad). */
const crashLoopMs = 2_000

/** The worker threads' entry, beside this module (src/cli/*.ts in development, dist/cli/*.js when built). */
const workerScript = new URL(
  import.meta.url.endsWith('.ts') ? './worker-thread.ts' : './worker-thread.js',
  import.meta.url,
)

/**
 * Starts `count` worker threads serving `bootstrap` (read once, by `run`) in this process, as Envoy runs
 * its workers: each binds every listener port with SO_REUSEPORT (the kernel spreads connections), and
 * all count against one SharedCounters table, so circuit breakers, outlier detection and rate limits hold
 * for the whole proxy. Worker 0 also serves admin and readiness, and reports ready only while every
 * worker is ready. SIGTERM / SIGINT drain all workers; when worker 0 exits cleanly (POST /quitquitquit)
 * the others close at once too. A worker that dies is restarted, unless it died within crashLoopMs of its start
 * (then the proxy stops with its exit code); a fatal error drains a worker and exits it non-zero, so it
 * is restarted too. A fatal error in the supervisor itself drains every worker (`drainMs` is theirs)
 * and exits non-zero. Resolves with the exit code once every worker has exited.
 */
export function supervise(
  bootstrap: Bootstrap,
  count: number,
  options: { fatalErrors: FatalErrors; drainMs: number },
): Promise<number> {
  const counters = SharedCounters.create(undefined, true)
  // The heap one node thread would get here (container limit, or --max-old-space-size), split across the workers.
  const resourceLimits = workerResourceLimits(count)
  const workers: (Worker | undefined)[] = []
  const ready: boolean[] = []
  let running = 0
  let stopping = false
  let exitCode = 0
  let exited: (code: number) => void = () => {}
  /** Worker 0's gathers waiting for the other workers' answers, by id. */
  const gathering = new Map<number, { waiting: Set<number>; answers: unknown[]; timer: NodeJS.Timeout }>()

  const gathered = (id: number): void => {
    const ask = gathering.get(id)
    if (ask === undefined) return
    gathering.delete(id)
    clearTimeout(ask.timer)
    workers[0]?.postMessage({ type: 'gathered', id, answers: ask.answers } satisfies SupervisorCommand)
  }

  /** Asks every other ready worker `topic`; worker 0 gets the answers together (or at the timeout). */
  const gather = (id: number, topic: string, query: unknown): void => {
    const waiting = new Set<number>()
    for (let i = 1; i < count; i++) {
      const w = workers[i]
      if (w === undefined || !ready[i]) continue
      waiting.add(i)
      w.postMessage({ type: 'ask', id, topic, query } satisfies SupervisorCommand)
    }
    gathering.set(id, { waiting, answers: [], timer: setTimeout(gathered, gatherTimeoutMs, id) })
    if (waiting.size === 0) gathered(id)
  }

  /** Worker 0's broadcast, to every other running worker. */
  const broadcast = (topic: string, payload: unknown): void => {
    for (let i = 1; i < count; i++)
      workers[i]?.postMessage({ type: 'broadcast', topic, payload } satisfies SupervisorCommand)
  }

  const tellWorkerZero = (): void => {
    workers[0]?.postMessage({ type: 'siblings', ready: ready.every(Boolean) } satisfies SupervisorCommand)
  }

  /** Every worker drains (SIGTERM), or with `now` closes at once (worker 0 quit: POST /quitquitquit). */
  const stopAll = (now = false): void => {
    if (stopping) return
    stopping = true
    for (const w of workers) w?.postMessage({ type: now ? 'quit' : 'drain' } satisfies SupervisorCommand)
  }

  const start = (index: number): Worker => {
    const startedAt = Date.now()
    const workerData: WorkerData = {
      bootstrap,
      index,
      count,
      counters: counters.buffer as SharedArrayBuffer,
    }
    const worker = new Worker(workerScript, { workerData, resourceLimits })
    running++
    ready[index] = false
    worker.on('message', (message: WorkerReport) => {
      if (message.type === 'gather') return gather(message.id, message.topic, message.query)
      if (message.type === 'broadcast') return broadcast(message.topic, message.payload)
      if (message.type === 'to-worker-zero') {
        const { topic, payload } = message
        workers[0]?.postMessage({
          type: 'from-worker',
          topic,
          payload,
          worker: index,
        } satisfies SupervisorCommand)
        return
      }
      if (message.type === 'answer') {
        const ask = gathering.get(message.id)
        if (ask === undefined || !ask.waiting.delete(index)) return
        ask.answers.push(message.data)
        if (ask.waiting.size === 0) gathered(message.id)
        return
      }
      ready[index] = message.listening
      if (!message.listening) log.error(`worker ${index}: a listener failed to bind: not ready`)
      tellWorkerZero()
    })
    worker.on('error', (err) => log.error(`worker ${index}: ${err.stack ?? err.message}`))
    worker.once('exit', (code) => {
      running--
      workers[index] = undefined
      ready[index] = false
      if (stopping) {
        if (code !== 0 && exitCode === 0) exitCode = code
      } else if (index === 0 && code === 0) {
        log.info('worker 0 exited after POST /quitquitquit: stopping the others')
        stopAll(true)
      } else {
        log.error(`worker ${index} exited with ${code}`)
        if (Date.now() - startedAt < crashLoopMs) {
          exitCode = code === 0 ? 1 : code
          stopAll()
        } else {
          workers[index] = start(index)
        }
      }
      tellWorkerZero()
      if (running === 0) exited(exitCode)
    })
    return worker
  }

  for (let i = 0; i < count; i++) workers[i] = start(i)
  process.once('SIGTERM', () => stopAll())
  process.once('SIGINT', () => stopAll())
  // Log rotation: each worker reopens its own access-log files.
  process.on('SIGUSR1', () => {
    for (const w of workers) w?.postMessage({ type: 'reopenAccessLogs' } satisfies SupervisorCommand)
  })
  options.fatalErrors.drainWith(() => stopAll(), options.drainMs)
  log.info(
    `running ${count} worker threads in process ${process.pid}, each with a ${resourceLimits.maxOldGenerationSizeMb} MiB old generation`,
  )
  return new Promise((resolve) => {
    exited = (code) => resolve(options.fatalErrors.failed ? FATAL_EXIT_CODE : code)
  })
}
