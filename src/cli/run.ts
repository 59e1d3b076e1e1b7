// `outrigger run --config <bootstrap.yaml>`: serve, or supervise worker processes that do.

import { loadBootstrap } from '../bootstrap/load.ts'
import { parseDurationMs } from '../config/duration.ts'
import { ConfigError, formatMessage } from '../config/messages.ts'
import { FatalErrors } from './fatal-errors.ts'
import { supervise, workerIndexEnv } from './supervisor.ts'

/**
 * Runs the proxy. With `concurrency` > 1 (bootstrap or `--concurrency`) this process supervises that
 * many workers; a worker (OUTRIGGER_WORKER_INDEX set) binds its listeners with SO_REUSEPORT, and only
 * worker 0 serves admin and readiness. A supervisor never loads the proxy's modules (serve.ts), so it
 * holds only what reading the bootstrap needs.
 */
export async function run(configFile: string, concurrency?: number): Promise<number> {
  // After an uncaught exception state may be broken: log it, drain and exit non-zero to be restarted.
  const fatalErrors = new FatalErrors()
  const workerIndex =
    process.env[workerIndexEnv] === undefined ? undefined : Number(process.env[workerIndexEnv])
  try {
    const bootstrap = await loadBootstrap(configFile)
    const workers = concurrency ?? bootstrap.concurrency
    if (workerIndex === undefined && workers > 1) {
      // Workers run the same entry script as this process (dist/main.js, or src/main.ts in development).
      const drainMs = parseDurationMs(bootstrap.terminationDrainDuration)
      return await supervise(process.argv[1], configFile, workers, { fatalErrors, drainMs })
    }
    const { serve } = await import('./serve.ts')
    return await serve(bootstrap, workerIndex, fatalErrors)
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const m of err.messages) process.stderr.write(`${formatMessage(m)}\n`)
      return 1
    }
    throw err
  }
}
