// `outrigger run --config <bootstrap.yaml>`: serve, or supervise worker threads that do.

import { parseDurationMs } from '../config/duration.ts'
import { ConfigError, formatMessage } from '../config/messages.ts'
import { readBootstrapElsewhere } from '../config/read-config.ts'
import { FatalErrors } from './fatal-errors.ts'
import { supervise } from './supervisor.ts'

/**
 * Runs the proxy. With `concurrency` > 1 (bootstrap or `--concurrency`) this thread supervises that
 * many worker threads (supervisor.ts): each binds the listeners with SO_REUSEPORT, they share one
 * SharedCounters table, and only worker 0 serves admin and readiness. The main thread never loads the
 * proxy's modules (serve.ts) then. With one worker the proxy runs in this thread, with no supervisor.
 */
export async function run(configFile: string, concurrency?: number): Promise<number> {
  // After an uncaught exception state may be broken: log it, drain and exit non-zero to be restarted.
  const fatalErrors = new FatalErrors()
  try {
    // Read in a short-lived child process: yaml and zod never load in this one (config/read-config.ts).
    // Without worker threads the same reader then reads the first resources (each worker reads its own).
    const { bootstrap, reader } = await readBootstrapElsewhere(configFile)
    const workers = concurrency ?? bootstrap.concurrency
    if (workers > 1) {
      reader.close()
      const drainMs = parseDurationMs(bootstrap.terminationDrainDuration)
      return await supervise(bootstrap, workers, { fatalErrors, drainMs })
    }
    const { serve } = await import('./serve.ts')
    return await serve(bootstrap, fatalErrors, undefined, reader)
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const m of err.messages) process.stderr.write(`${formatMessage(m)}\n`)
      return 1
    }
    throw err
  }
}
