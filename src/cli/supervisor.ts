// Runs N proxy worker processes that share the listener ports with SO_REUSEPORT, and keeps them running.

import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { log } from '../telemetry/log.ts'
import { FATAL_EXIT_CODE, type FatalErrors } from './fatal-errors.ts'

/** Messages between the supervisor and its workers (over the fork IPC channel). */
export type WorkerMessage = { type: 'ready' } | { type: 'siblings'; ready: boolean }

export const workerIndexEnv = 'OUTRIGGER_WORKER_INDEX'

/** A worker that crashes this soon after its start is not restarted again (the config is likely bad). */
const crashLoopMs = 2_000

/**
 * Forks `count` workers of `outrigger run --config <file>`. Worker 0 also serves admin and readiness,
 * and reports ready only while every worker is ready. SIGTERM / SIGINT drain all workers; when worker 0
 * exits cleanly (POST /quitquitquit) the others drain too. A worker that exits otherwise (a fatal error
 * drains it and exits non-zero) is restarted. A fatal error in the supervisor itself drains every worker
 * (`drainMs` is theirs) and exits non-zero. Resolves with the exit code.
 */
export async function supervise(
  mainScript: string,
  configFile: string,
  count: number,
  options: { fatalErrors: FatalErrors; drainMs: number },
): Promise<number> {
  const workers: (ChildProcess | undefined)[] = []
  const ready: boolean[] = []
  let stopping = false
  let exitCode = 0

  const tellWorkerZero = (): void => {
    const w0 = workers[0]
    if (w0?.connected) w0.send({ type: 'siblings', ready: ready.every(Boolean) } satisfies WorkerMessage)
  }

  const stopAll = (): void => {
    if (stopping) return
    stopping = true
    for (const w of workers) if (w !== undefined && w.exitCode === null) w.kill('SIGTERM')
  }

  const start = (index: number): ChildProcess => {
    const startedAt = Date.now()
    const child = fork(mainScript, ['run', '--config', configFile], {
      env: { ...process.env, [workerIndexEnv]: String(index) },
      stdio: 'inherit',
    })
    ready[index] = false
    child.on('message', (message: WorkerMessage) => {
      if (message.type !== 'ready') return
      ready[index] = true
      tellWorkerZero()
    })
    child.once('exit', (code, signal) => {
      ready[index] = false
      tellWorkerZero()
      if (stopping) return
      if (index === 0 && code === 0) {
        log.info('worker 0 exited after a drain request: draining the others')
        stopAll()
        return
      }
      log.error(`worker ${index} (pid ${child.pid}) exited with ${signal ?? code}`)
      if (Date.now() - startedAt < crashLoopMs) {
        exitCode = code === 0 || code === null ? 1 : code
        stopAll()
        return
      }
      workers[index] = start(index)
    })
    return child
  }

  for (let i = 0; i < count; i++) workers[i] = start(i)
  process.once('SIGTERM', stopAll)
  process.once('SIGINT', stopAll)
  options.fatalErrors.drainWith(stopAll, options.drainMs)
  log.info(`supervising ${count} workers: ${workers.map((w) => w?.pid).join(', ')}`)
  // Wait until every worker of the final generation has exited.
  while (workers.some((w) => w !== undefined && w.exitCode === null && w.signalCode === null)) {
    await Promise.race(
      workers
        .filter((w) => w !== undefined && w.exitCode === null)
        .map((w) => once(w as ChildProcess, 'exit')),
    )
  }
  return options.fatalErrors.failed ? FATAL_EXIT_CODE : exitCode
}
