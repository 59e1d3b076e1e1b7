// `outrigger run --config <bootstrap.yaml>`: serve, or supervise worker processes that do.

import { loadBootstrap } from '../bootstrap/load.ts'
import { ConfigError, formatMessage } from '../config/messages.ts'
import { log } from '../telemetry/log.ts'
import { supervise, workerIndexEnv } from './supervisor.ts'

/**
 * Runs the proxy. With `concurrency` > 1 (bootstrap or `--concurrency`) this process supervises that
 * many workers; a worker (OUTRIGGER_WORKER_INDEX set) binds its listeners with SO_REUSEPORT, and only
 * worker 0 serves admin and readiness. A supervisor never loads the proxy's modules (serve.ts), so it
 * holds only what reading the bootstrap needs.
 */
export async function run(configFile: string, concurrency?: number): Promise<number> {
  // One request's bug must not take down every other connection: log it and keep serving.
  process.on('uncaughtException', (err) => log.error(`uncaught: ${err.stack ?? err.message}`))
  process.on('unhandledRejection', (err) => log.error(`unhandled rejection: ${String(err)}`))
  const workerIndex =
    process.env[workerIndexEnv] === undefined ? undefined : Number(process.env[workerIndexEnv])
  try {
    const bootstrap = await loadBootstrap(configFile)
    const workers = concurrency ?? bootstrap.concurrency
    if (workerIndex === undefined && workers > 1) {
      // Workers run the same entry script as this process (dist/main.js, or src/main.ts in development).
      return await supervise(process.argv[1], configFile, workers)
    }
    const { serve } = await import('./serve.ts')
    return await serve(bootstrap, workerIndex)
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const m of err.messages) process.stderr.write(`${formatMessage(m)}\n`)
      return 1
    }
    throw err
  }
}
