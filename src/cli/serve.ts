// Serves the proxy in this process: the runtime, admin and health ports, and the drain on SIGTERM.

import { once } from 'node:events'
import type { Server } from 'node:http'
import { createAdminServer } from '../admin/admin-server.ts'
import { createHealthServer } from '../admin/health-server.ts'
import type { Bootstrap } from '../bootstrap/schema.ts'
import { ProxyRuntime } from '../proxy-runtime.ts'
import { log } from '../telemetry/log.ts'
import { FATAL_EXIT_CODE, type FatalErrors } from './fatal-errors.ts'
import type { WorkerMessage } from './supervisor.ts'

async function listen(server: Server, port: number, host: string, what: string): Promise<void> {
  server.listen(port, host)
  try {
    await once(server, 'listening')
  } catch (err) {
    throw new Error(`${what} ${host}:${port}: ${(err as Error).message}`)
  }
}

/**
 * Starts the proxy (as worker `workerIndex` of a supervisor, or alone) and resolves with its exit code:
 * 0 after a drain asked for, FATAL_EXIT_CODE after a drain that `fatalErrors` started.
 */
export async function serve(
  bootstrap: Bootstrap,
  workerIndex: number | undefined,
  fatalErrors: FatalErrors,
): Promise<number> {
  const proxy = new ProxyRuntime(bootstrap, { reusePort: workerIndex !== undefined })
  if (workerIndex === 0) {
    proxy.siblingsReady = false
    process.on('message', (m: WorkerMessage) => {
      if (m.type === 'siblings') proxy.siblingsReady = m.ready
    })
  }
  await proxy.start()
  if (workerIndex !== undefined && workerIndex > 0) return runWorker(proxy, fatalErrors)
  const b = proxy.bootstrap.listeners
  let stopping: Promise<void> | undefined
  const stop = (why: string): Promise<void> => {
    stopping ??= (async () => {
      log.info(`${why}: draining for up to ${proxy.drainMs} ms`)
      await proxy.shutdown()
      admin.close()
      health.close()
      admin.closeAllConnections()
      health.closeAllConnections()
      log.info('drained, exiting')
    })()
    return stopping
  }
  const admin = createAdminServer(proxy, { quit: () => void stop('POST /quitquitquit') })
  const health = createHealthServer(proxy)
  await listen(admin, b.admin.port, b.admin.address ?? '127.0.0.1', 'admin listener')
  await listen(health, b.health.port, b.health.address ?? '0.0.0.0', 'health listener')
  for (const l of proxy.listeners.listeners) {
    log.info(
      `listening ${l.model.direction} ${l.model.address}:${l.model.port}${l.bound ? '' : ` FAILED: ${l.error}`}`,
    )
  }
  log.info(
    `admin on ${b.admin.address ?? '127.0.0.1'}:${b.admin.port}, ready on :${b.health.port}/healthz/ready`,
  )
  process.send?.({ type: 'ready' } satisfies WorkerMessage)
  const signalled = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve(stop('SIGTERM')))
    process.once('SIGINT', () => resolve(stop('SIGINT')))
    fatalErrors.drainWith((reason) => resolve(stop(reason)), proxy.drainMs)
  })
  await Promise.race([signalled, new Promise<void>((resolve) => admin.once('close', resolve))])
  await stopping
  return fatalErrors.failed ? FATAL_EXIT_CODE : 0
}

/** A worker other than worker 0: traffic listeners only; drains on SIGTERM or after a fatal error. */
async function runWorker(proxy: ProxyRuntime, fatalErrors: FatalErrors): Promise<number> {
  process.send?.({ type: 'ready' } satisfies WorkerMessage)
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
    // The supervisor is gone: nobody will ever signal this worker.
    process.once('disconnect', resolve)
    fatalErrors.drainWith(() => resolve(), proxy.drainMs)
  })
  await proxy.shutdown()
  return fatalErrors.failed ? FATAL_EXIT_CODE : 0
}
