// Serves the proxy in this process: the runtime, admin and health ports, and the drain on SIGTERM.

import { once } from 'node:events'
import type { Server } from 'node:http'
import type { MessagePort } from 'node:worker_threads'
import { createAdminServer, DRAIN_LISTENERS_TOPIC } from '../admin/admin-server.ts'
import { createHealthServer } from '../admin/health-server.ts'
import { createStatsServer } from '../admin/stats-server.ts'
import type { Bootstrap } from '../bootstrap/schema.ts'
import type { ConfigReader } from '../config/read-config.ts'
import { RemoteTaps } from '../live/remote-taps.ts'
import type { HistoryQuery, StatQuery } from '../live/stat-snapshot.ts'
import { answerTopQuery } from '../live/top-report.ts'
import { type DrainListenersRequest, ProxyRuntime } from '../proxy-runtime.ts'
import { IdleTrim } from '../runtime/idle-trim.ts'
import { collectAllAvailableGarbage } from '../runtime/memory-reducing-collection.ts'
import type { SharedCounters } from '../shared/shared-counters.ts'
import { log } from '../telemetry/log.ts'
import { FATAL_EXIT_CODE, type FatalErrors } from './fatal-errors.ts'
import type { SupervisorCommand, WorkerReport } from './supervisor.ts'
import { WorkerLink } from './worker-link.ts'

/** A worker thread's place in the proxy: its index, the worker count, the shared table, its supervisor. */
export interface WorkerContext {
  readonly index: number
  readonly count: number
  readonly counters: SharedCounters
  readonly port: MessagePort
}

async function listen(server: Server, port: number, host: string, what: string): Promise<void> {
  server.listen(port, host)
  try {
    await once(server, 'listening')
  } catch (err) {
    throw new Error(`${what} ${host}:${port}: ${(err as Error).message}`)
  }
}

/**
 * Start-up's garbage (loading the modules, reading and compiling the first config) grew V8's young
 * generation, and an idle proxy never shrinks it back: one memory-reducing collection before the proxy says
 * it is ready gives those pages back (about 6 MiB of the idle RSS, docs/memory.md).
 */
async function collectStartupGarbage(): Promise<void> {
  try {
    await collectAllAvailableGarbage()
  } catch (err) {
    log.debug(`the collection after start-up failed: ${(err as Error).message}`)
  }
}

/**
 * Starts the proxy (as a supervisor's worker thread, or alone in the main thread, where `reader` is the one
 * that read the bootstrap, to read the first resources) and resolves with its
 * exit code: 0 after a drain asked for, FATAL_EXIT_CODE after a drain that `fatalErrors` started. A
 * worker drains when its supervisor says so (signals reach only the main thread).
 */
export async function serve(
  bootstrap: Bootstrap,
  fatalErrors: FatalErrors,
  worker?: WorkerContext,
  reader?: ConfigReader,
): Promise<number> {
  const proxy = new ProxyRuntime(bootstrap, {
    reader,
    reusePort: worker !== undefined,
    counters: worker?.counters,
    worker: worker === undefined ? undefined : { index: worker.index, count: worker.count },
  })
  /** Resolves when the supervisor asks this worker to stop: to drain (SIGTERM), or `now` (POST /quitquitquit). */
  let onStopAsked: (now: boolean) => void = () => {}
  const stopAsked = new Promise<boolean>((resolve) => {
    onStopAsked = resolve
  })
  const link = worker === undefined ? undefined : new WorkerLink(worker.port)
  // What this worker answers worker 0's admin: its own Prometheus metrics (a scrape sums every worker's).
  link?.answer('prometheus', () => proxy.stats.getMetricsAsJSON())
  // …and its live numbers (admin /live/stat and /live/history merge every worker's; start() loads them).
  if (bootstrap.live.enabled) {
    link?.answer('live-stat', (query) =>
      proxy.live?.snapshot((query as StatQuery).by, (query as StatQuery).windowSeconds),
    )
    link?.answer('live-history', (query) =>
      proxy.live?.history((query as HistoryQuery).by, (query as HistoryQuery).seconds),
    )
  }
  link?.answer('live-top', (query) => answerTopQuery(proxy.heavyHitters, query))
  // Worker 0's admin POST /drain_listeners drains every worker's listeners.
  link?.onBroadcast(DRAIN_LISTENERS_TOPIC, (request) =>
    proxy.drainListeners(request as DrainListenersRequest),
  )
  // Copies of worker 0's taps (admin /tap): attached when it asks, their matches sent to it.
  if (link !== undefined && worker !== undefined && worker.index > 0) {
    const taps = new RemoteTaps(proxy.tap, (message) => link.tellWorkerZero('tap-event', message))
    link.answer('tap-attach', (message) => taps.attach(message))
    link.onBroadcast('tap-detach', (message) => taps.detach(message))
  }
  worker?.port.on('message', (m: SupervisorCommand) => {
    if (link?.handle(m)) return
    if (m.type === 'siblings') proxy.siblingsReady = m.ready
    else if (m.type === 'drain') onStopAsked(false)
    else if (m.type === 'quit') onStopAsked(true)
    else if (m.type === 'reopenAccessLogs') proxy.accessLog.files.reopen()
  })
  if (worker?.index === 0) proxy.siblingsReady = false
  await proxy.start()
  if (worker !== undefined && worker.index > 0) return runWorker(proxy, worker, stopAsked, fatalErrors)
  const b = proxy.bootstrap.listeners
  let stopping: Promise<void> | undefined
  /** Drains (SIGTERM) or, with `now`, closes at once (POST /quitquitquit, as Envoy's), then closes the ports. */
  const stop = (why: string, now = false): Promise<void> => {
    stopping ??= (async () => {
      log.info(now ? `${why}: exiting now` : `${why}: draining`)
      // After a fatal error the drain takes no new connection (the state may be broken).
      await proxy.shutdown(now, !fatalErrors.failed)
      closeServers()
      log.info('drained, exiting')
    })()
    return stopping
  }
  const otherWorkers = worker !== undefined && worker.count > 1 ? link : undefined
  const admin = createAdminServer(proxy, {
    quit: () => void stop('POST /quitquitquit', true),
    otherWorkers,
  })
  const health = createHealthServer(proxy)
  const stats = createStatsServer(proxy, otherWorkers)
  const closeServers = (): void => {
    for (const server of [admin, health, stats]) {
      server.close()
      server.closeAllConnections()
    }
  }
  await collectStartupGarbage()
  // Istio's static listeners (admin, status 15021, Prometheus 15090): Envoy exits when one cannot bind.
  try {
    await listen(admin, b.admin.port, b.admin.address ?? '127.0.0.1', 'admin listener')
    await listen(health, b.health.port, b.health.address ?? '0.0.0.0', 'health listener')
    await listen(stats, b.stats.port, b.stats.address, 'stats listener')
  } catch (error) {
    log.error(`cannot serve: ${(error as Error).message}`)
    closeServers()
    await proxy.shutdown(true)
    return FATAL_EXIT_CODE
  }
  for (const l of proxy.listeners.listeners) {
    log.info(
      `listening ${l.model.direction} ${l.model.address}:${l.model.port}${l.bound ? '' : ` FAILED: ${l.error}`}`,
    )
  }
  log.info(
    `admin on ${b.admin.address ?? '127.0.0.1'}:${b.admin.port}, ready on :${b.health.port}/healthz/ready, stats on :${b.stats.port}/stats/prometheus`,
  )
  worker?.port.postMessage({ type: 'ready', listening: proxy.listeners.allBound } satisfies WorkerReport)
  // One thread gives the process's freed malloc memory back when it falls idle after load (docs/memory.md).
  // A reload's compile leaves garbage and a grown young generation: collected once the proxy is idle again.
  const idleTrim =
    process.env.OUTRIGGER_MALLOC_TRIM === 'off'
      ? undefined
      : new IdleTrim({ compiles: () => proxy.reloadCounts.succeeded + proxy.reloadCounts.failed })
  const signalled = new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve(stop('SIGTERM')))
    process.once('SIGINT', () => resolve(stop('SIGINT')))
    // Envoy reopens its access-log files on SIGUSR1 (log rotation); with workers, the supervisor relays it.
    if (worker === undefined) process.on('SIGUSR1', () => proxy.accessLog.files.reopen())
    void stopAsked.then((now) =>
      resolve(stop(now ? 'the supervisor asked to quit' : 'the supervisor asked to drain', now)),
    )
    fatalErrors.drainWith((reason) => resolve(stop(reason)), proxy.drainMs)
  })
  await Promise.race([signalled, new Promise<void>((resolve) => admin.once('close', resolve))])
  await stopping
  idleTrim?.close()
  return fatalErrors.failed ? FATAL_EXIT_CODE : 0
}

/**
 * A worker other than worker 0: traffic listeners only; reports whether they all bound, and drains (or
 * closes at once) when the supervisor says so, or drains after a fatal error.
 */
async function runWorker(
  proxy: ProxyRuntime,
  worker: WorkerContext,
  stopAsked: Promise<boolean>,
  fatalErrors: FatalErrors,
): Promise<number> {
  await collectStartupGarbage()
  worker.port.postMessage({ type: 'ready', listening: proxy.listeners.allBound } satisfies WorkerReport)
  const now = await new Promise<boolean>((resolve) => {
    void stopAsked.then(resolve)
    fatalErrors.drainWith(() => resolve(false), proxy.drainMs)
  })
  await proxy.shutdown(now, !fatalErrors.failed)
  return fatalErrors.failed ? FATAL_EXIT_CODE : 0
}
