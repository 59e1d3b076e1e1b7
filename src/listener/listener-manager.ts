// Keeps the bound listeners in step with the model: opens new ports, keeps existing ones, drains removed ones.

import type { IncomingMessage, Server } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ListenerModel } from '../config/model.ts'
import type { HttpFilter } from '../http/filter.ts'
import { createHttpServer } from '../http/server.ts'
import type { SharedCounters } from '../shared/shared-counters.ts'
import { ConnectionDispatcher } from './connection-dispatcher.ts'
import { onUpgradeRequest } from './http-upgrade.ts'
import { ListenerRuntime, type ProxyState } from './listener-runtime.ts'
import { DetectionStats, ListenerStats } from './listener-stats.ts'

interface BoundListener {
  readonly runtime: ListenerRuntime
  readonly server: Server
  readonly sockets: Set<Socket>
  bound: boolean
  error: Error | undefined
}

export type FilterFactory = (listener: ListenerModel) => readonly HttpFilter[]

function keyOf(l: ListenerModel): string {
  return `${l.address}:${l.port}`
}

/** The shared table, this worker's index and the worker count, for the per-worker connection counts. */
export interface WorkerStats {
  readonly counters: SharedCounters
  readonly worker: number
  readonly workers: number
}

/**
 * The SharedCounters key of worker `worker`'s accepted-connection count on a listener: Envoy's
 * `listener.<address>.worker_<id>.downstream_cx_total` (its first cell).
 */
function workerListenerKey(l: ListenerModel, worker: number): string {
  return `listener|${keyOf(l)}|worker|${worker}`
}

export class ListenerManager {
  readonly #state: ProxyState
  readonly #filters: FilterFactory
  readonly #reusePort: boolean
  #listeners = new Map<string, BoundListener>()
  #draining = false

  /** Where this worker counts the connections its listeners accept (Envoy's per-worker listener stats). */
  readonly #workerStats: WorkerStats | undefined
  /** The inspectors' outcomes over every listener (Envoy's tls_inspector.* and http_inspector.*). */
  readonly #detection: DetectionStats | undefined

  constructor(state: ProxyState, filters: FilterFactory, reusePort = false, workerStats?: WorkerStats) {
    this.#state = state
    this.#filters = filters
    this.#reusePort = reusePort
    this.#workerStats = workerStats
    this.#detection = workerStats === undefined ? undefined : new DetectionStats(workerStats.counters)
  }

  /** Applies the model's listener set; resolves when new listeners are bound (or failed to bind). */
  async reconcile(models: readonly ListenerModel[], drainMs: number): Promise<void> {
    const next = new Map<string, BoundListener>()
    const opening: Promise<void>[] = []
    for (const model of models) {
      const key = keyOf(model)
      const existing = this.#listeners.get(key)
      if (existing?.bound) {
        existing.runtime.model = model
        next.set(key, existing)
        continue
      }
      const bound = this.#open(model)
      next.set(key, bound)
      opening.push(this.#listen(bound))
    }
    const removed = [...this.#listeners].filter(([key]) => !next.has(key)).map(([, l]) => l)
    this.#listeners = next
    for (const l of removed) void drain(l, drainMs)
    await Promise.all(opening)
  }

  #open(model: ListenerModel): BoundListener {
    const runtime = new ListenerRuntime(model, this.#filters(model), this.#state)
    const server = createHttpServer(runtime)
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      onUpgradeRequest(runtime, req, socket, head),
    )
    const sockets = new Set<Socket>()
    const stats = this.#workerStats
    const accepted = stats?.counters.block(workerListenerKey(model, stats.worker))
    // Envoy's listener.<address>.downstream_cx_total / _active / _destroy / _overflow, over every worker.
    const listenerStats =
      stats === undefined
        ? undefined
        : new ListenerStats(stats.counters, model.address, model.port, this.#state.limits)
    // Runs before anything reads the connection: one over a connection limit is closed at once.
    const admit = (socket: Socket): boolean => {
      if (listenerStats !== undefined && !listenerStats.admit()) {
        socket.destroy()
        return false
      }
      if (accepted !== undefined) Atomics.add(accepted.cells, accepted.base, 1)
      sockets.add(socket)
      socket.once('close', () => {
        sockets.delete(socket)
        listenerStats?.closed()
      })
      return true
    }
    // Every port listens with its HTTP server; the dispatcher decides per connection whether the HTTP
    // codec, the TCP proxy or protocol detection gets it, so a reload may change a port's protocol.
    new ConnectionDispatcher(runtime, server, this.#detection, admit)
    return { runtime, server, sockets, bound: false, error: undefined }
  }

  #listen(l: BoundListener): Promise<void> {
    const { address, port } = l.runtime.model
    return new Promise((resolve) => {
      const onError = (err: Error): void => {
        l.error = err
        process.stderr.write(`listener ${address}:${port}: ${err.message}\n`)
        resolve()
      }
      l.server.once('error', onError)
      l.server.listen({ host: address, port, backlog: 4096, reusePort: this.#reusePort }, () => {
        l.server.off('error', onError)
        l.server.on('error', (err) => process.stderr.write(`listener ${address}:${port}: ${err.message}\n`))
        l.bound = true
        resolve()
      })
    })
  }

  /** True when every listener of the current model is bound. */
  get allBound(): boolean {
    for (const l of this.#listeners.values()) if (!l.bound) return false
    return !this.#draining
  }

  get listeners(): {
    model: ListenerModel
    bound: boolean
    error?: string
    connections: number
    mtlsRefusals: ListenerRuntime['mtlsRefusals']
    workerConnections: number[]
  }[] {
    return [...this.#listeners.values()].map((l) => ({
      model: l.runtime.model,
      bound: l.bound,
      error: l.error?.message,
      connections: l.sockets.size,
      mtlsRefusals: l.runtime.mtlsRefusals,
      workerConnections: this.#workerConnections(l.runtime.model),
    }))
  }

  /** Connections each worker accepted on a listener, over every worker (Envoy's per-worker listener stats). */
  #workerConnections(model: ListenerModel): number[] {
    const stats = this.#workerStats
    if (stats === undefined) return []
    return Array.from({ length: stats.workers }, (_, worker) => {
      const block = stats.counters.find(workerListenerKey(model, worker))
      return block === undefined ? 0 : Atomics.load(block.cells, block.base)
    })
  }

  /** Stops accepting everywhere and waits up to `drainMs` for in-flight requests to finish. */
  async drainAll(drainMs: number): Promise<void> {
    this.#draining = true
    await Promise.all([...this.#listeners.values()].map((l) => drain(l, drainMs)))
  }
}

/** Stop accepting, close idle keep-alive connections, let active requests finish, then force-close. */
async function drain(l: BoundListener, drainMs: number): Promise<void> {
  l.runtime.draining = true
  if (!l.bound) return
  const closed = new Promise<void>((resolve) => l.server.close(() => resolve()))
  l.server.closeIdleConnections()
  l.runtime.http2IfStarted?.drain()
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, drainMs)
  })
  // Connections that finish a response while draining become idle: close them as they do.
  const sweeper = setInterval(() => l.server.closeIdleConnections(), 50)
  await Promise.race([closed, deadline])
  clearInterval(sweeper)
  clearTimeout(timer)
  l.server.closeAllConnections()
  l.runtime.http2IfStarted?.destroy()
  for (const socket of l.sockets) socket.destroy()
}
