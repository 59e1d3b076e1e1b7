// Turns an uncaught exception or unhandled rejection into a logged drain and a non-zero exit, so a supervisor or the kubelet restarts the process.

import { log } from '../telemetry/log.ts'

/** The exit code after a fatal error (as Node's own for an uncaught exception). */
export const FATAL_EXIT_CODE = 1

/** How long past its drain time a drain may run after a fatal error before the process exits anyway. */
const DRAIN_OVERRUN_MS = 5_000

function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error)
}

/**
 * Installs the process's `uncaughtException` and `unhandledRejection` handlers. After one, state may be
 * broken, so the process must not serve on: it logs the error, runs the drain it was given (stop
 * accepting, let in-flight requests finish within the drain time) and exits with FATAL_EXIT_CODE,
 * or exits at once when nothing is serving yet. A drain that hangs is cut off after its drain time
 * plus DRAIN_OVERRUN_MS. Further errors during the drain are logged only.
 */
export class FatalErrors {
  #drain: ((reason: string) => void) | undefined
  #drainMs = 0
  #failed = false

  constructor() {
    process.on('uncaughtException', (error) => this.#fatal('uncaught exception', error))
    process.on('unhandledRejection', (reason) => this.#fatal('unhandled rejection', reason))
  }

  /** True once a fatal error happened: the process is draining and will exit with FATAL_EXIT_CODE. */
  get failed(): boolean {
    return this.#failed
  }

  /** From now on a fatal error calls `drain` (which must be safe to call again), given up to `drainMs`. */
  drainWith(drain: (reason: string) => void, drainMs: number): void {
    this.#drain = drain
    this.#drainMs = drainMs
  }

  #fatal(kind: string, error: unknown): void {
    log.error(`${kind}: ${describe(error)}`)
    if (this.#failed) return
    this.#failed = true
    process.exitCode = FATAL_EXIT_CODE
    const drain = this.#drain
    if (drain === undefined) {
      log.error(`exiting with ${FATAL_EXIT_CODE} after the ${kind}`)
      process.exit(FATAL_EXIT_CODE)
    }
    const deadlineMs = this.#drainMs + DRAIN_OVERRUN_MS
    log.error(
      `draining after the ${kind}, then exiting with ${FATAL_EXIT_CODE} (at the latest in ${deadlineMs} ms)`,
    )
    setTimeout(() => {
      log.error(`the drain after the ${kind} did not finish in time: exiting with ${FATAL_EXIT_CODE}`)
      process.exit(FATAL_EXIT_CODE)
    }, deadlineMs).unref()
    try {
      drain(kind)
    } catch (drainError) {
      log.error(`the drain after the ${kind} failed: ${describe(drainError)}`)
      process.exit(FATAL_EXIT_CODE)
    }
  }
}
