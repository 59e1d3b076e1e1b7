// `outrigger run --config <bootstrap.yaml>`: start the proxy, its admin and health ports, and drain on SIGTERM.

import { once } from 'node:events'
import type { Server } from 'node:http'
import { createAdminServer } from '../admin/admin-server.ts'
import { createHealthServer } from '../admin/health-server.ts'
import { loadBootstrap } from '../bootstrap/load.ts'
import { ConfigError, formatMessage } from '../config/messages.ts'
import { ProxyRuntime } from '../proxy-runtime.ts'
import { log } from '../telemetry/log.ts'
import { supervise, type WorkerMessage, workerIndexEnv } from './supervisor.ts'

async function listen(server: Server, port: number, host: string, what: string): Promise<void> {
  server.listen(port, host)
  try {
    await once(server, 'listening')
  } catch (err) {
    throw new Error(`${what} ${host}:${port}: ${(err as Error).message}`)
  }
}

/**
 * Runs the proxy. With `concurrency` > 1 (bootstrap or `--concurrency`) this process supervises that
 * many workers; a worker (OUTRIGGER_WORKER_INDEX set) binds its listeners with SO_REUSEPORT, and only
 * worker 0 serves admin and readiness.
 */
export async function run(configFile: string, concurrency?: number): Promise<number> {
  // One request's bug must not take down every other connection: log it and keep serving.
  process.on('uncaughtException', (err) => log.error(`uncaught: ${err.stack ?? err.message}`))
  process.on('unhandledRejection', (err) => log.error(`unhandled rejection: ${String(err)}`))
  const workerIndex =
    process.env[workerIndexEnv] === undefined ? undefined : Number(process.env[workerIndexEnv])
  let proxy: ProxyRuntime
  try {
    const bootstrap = await loadBootstrap(configFile)
    const workers = concurrency ?? bootstrap.concurrency
    if (workerIndex === undefined && workers > 1) {
      // Workers run the same entry script as this process (dist/main.js, or src/main.ts in development).
      return await supervise(process.argv[1], configFile, workers)
    }
    proxy = new ProxyRuntime(bootstrap, { reusePort: workerIndex !== undefined })
    if (workerIndex === 0) {
      proxy.siblingsReady = false
      process.on('message', (m: WorkerMessage) => {
        if (m.type === 'siblings') proxy.siblingsReady = m.ready
      })
    }
    await proxy.start()
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const m of err.messages) process.stderr.write(`${formatMessage(m)}\n`)
      return 1
    }
    throw err
  }
  if (workerIndex !== undefined && workerIndex > 0) return runWorker(proxy)
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
  })
  await Promise.race([signalled, new Promise<void>((resolve) => admin.once('close', resolve))])
  await stopping
  return 0
}

/** A worker other than worker 0: traffic listeners only; drains on SIGTERM. */
async function runWorker(proxy: ProxyRuntime): Promise<number> {
  process.send?.({ type: 'ready' } satisfies WorkerMessage)
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve)
    process.once('SIGINT', resolve)
    // The supervisor is gone: nobody will ever signal this worker.
    process.once('disconnect', resolve)
  })
  await proxy.shutdown()
  return 0
}
