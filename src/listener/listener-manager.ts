// Keeps the bound listeners in step with the model: opens new ports, keeps existing ones, drains removed ones.

import type { IncomingMessage, Server } from 'node:http'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { ListenerModel } from '../config/model.ts'
import type { HttpFilter } from '../http/filter.ts'
import { createHttpServer } from '../http/server.ts'
import { setOriginalDestination } from '../protocol/original-destination.ts'
import type { SharedCounters } from '../shared/shared-counters.ts'
import { log } from '../telemetry/log.ts'
import { CaptureTargets } from './capture-targets.ts'
import { ConnectionDispatcher } from './connection-dispatcher.ts'
import { onUpgradeRequest } from './http-upgrade.ts'
import { type DrainPlan, ListenerDrain } from './listener-drain.ts'
import { ListenerRuntime, type ProxyState } from './listener-runtime.ts'
import { DetectionStats, ListenerStats } from './listener-stats.ts'
import { readOriginalDestination } from './original-destination.ts'
import { openTransparentSocket } from './transparent-socket.ts'

interface BoundListener {
  readonly runtime: ListenerRuntime
  readonly server: Server
  readonly sockets: Set<Socket>
  /** Its connection counts over every worker; undefined without a shared table (then `sockets` counts). */
  readonly stats: ListenerStats | undefined
  /** A capture listener's listening socket: it hands each connection on by original destination. */
  readonly acceptor: NetServer | undefined
  bound: boolean
  error: Error | undefined
  /** Its drain, once one started. */
  drain: ListenerDrain | undefined
}

export type FilterFactory = (listener: ListenerModel) => readonly HttpFilter[]

function keyOf(l: ListenerModel): string {
  // Unbound listeners of both directions may share an address and port (an app port that is also a service port).
  return l.bindToPort === false ? `${l.direction}|${l.address}:${l.port}` : `${l.address}:${l.port}`
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
  /** Where capture listeners hand connections, rebuilt with every reconcile. */
  #captureTargets = new CaptureTargets<BoundListener>([])
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
    this.#captureTargets = new CaptureTargets(
      [...next.values()].map((l) => ({ model: l.runtime.model, target: l })),
    )
    // Envoy drains a listener removed by LDS: it stops accepting at once, its connections drain.
    for (const l of removed) void drain(l, { acceptMs: 0, cutMs: drainMs })
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
    const overload = this.#state.overload
    const admit = (socket: Socket): boolean => {
      // Envoy's reject_incoming_connections: closed before anything reads it, counted, never admitted.
      if (overload.rejectIncomingConnections) {
        socket.destroy()
        listenerStats?.overloadRejected()
        return false
      }
      if (listenerStats !== undefined && !listenerStats.admit()) {
        socket.destroy()
        return false
      }
      if (accepted !== undefined) Atomics.add(accepted.cells, accepted.base, 1)
      sockets.add(socket)
      // One listener function per listener, not a closure (and once's wrapper) per connection: a socket
      // emits 'close' once, and the listener gets it as `this`.
      socket.on('close', forget)
      return true
    }
    function forget(this: Socket): void {
      sockets.delete(this)
      listenerStats?.closed()
    }
    // Every port listens with its HTTP server; the dispatcher decides per connection whether the HTTP
    // codec, the TCP proxy or protocol detection gets it, so a reload may change a port's protocol.
    new ConnectionDispatcher(runtime, server, this.#detection, admit)
    const bound: BoundListener = {
      runtime,
      server,
      sockets,
      stats: listenerStats,
      acceptor: undefined,
      bound: false,
      error: undefined,
      drain: undefined,
    }
    if (model.capture === undefined) return bound
    // allowHalfOpen and noDelay as node:http's own server accepts: the socket is served the same way.
    const acceptor = createNetServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
      this.#onCaptured(bound, socket),
    )
    return { ...bound, acceptor }
  }

  /**
   * A connection the capture rules sent to a capture listener: Envoy's original_dst listener filter, then
   * the hand-off to the listener of the original destination (use_original_dst), or this listener's own
   * passthrough chain when none matches. A destination on one of the proxy's own ports is closed: passing
   * it through would loop back here.
   */
  #onCaptured(l: BoundListener, socket: Socket): void {
    const model = l.runtime.model
    const capture = model.capture
    if (capture === undefined) return
    let destination: ReturnType<typeof readOriginalDestination>
    try {
      destination = readOriginalDestination(socket, capture.mode)
    } catch (err) {
      log.warning(`listener ${model.name}: no original destination: ${(err as Error).message}`)
    }
    if (destination === undefined || capture.ownPorts.includes(destination.port)) {
      log.debug(
        `listener ${model.name}: connection from ${socket.remoteAddress}:${socket.remotePort} to ${destination?.address ?? '?'}:${destination?.port ?? '?'} closed: it would loop to the proxy itself`,
      )
      socket.destroy()
      return
    }
    setOriginalDestination(socket, destination)
    const target = this.#captureTargets.match(model.direction, destination) ?? l
    target.server.emit('connection', socket)
  }

  #listen(l: BoundListener): Promise<void> {
    const { address, port } = l.runtime.model
    // Envoy's bind_to_port: false: a capture listener hands this listener its connections.
    if (l.runtime.model.bindToPort === false) {
      trackConnectionsUnbound(l.server)
      l.bound = true
      return Promise.resolve()
    }
    const acceptor = l.acceptor
    if (acceptor !== undefined) return this.#listenCapture(l, acceptor)
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

  /** A capture listener binds its own socket; under TPROXY one with IP_TRANSPARENT, made through libc. */
  #listenCapture(l: BoundListener, acceptor: NetServer): Promise<void> {
    const { address, port, capture } = l.runtime.model
    return new Promise((resolve) => {
      const onError = (err: Error): void => {
        l.error = err
        process.stderr.write(`listener ${address}:${port}: ${err.message}\n`)
        resolve()
      }
      const onListening = (): void => {
        // The acceptor listens; the server behind it, which serves this listener's own chain, does not.
        trackConnectionsUnbound(l.server)
        acceptor.off('error', onError)
        acceptor.on('error', (err) => process.stderr.write(`listener ${address}:${port}: ${err.message}\n`))
        l.bound = true
        resolve()
      }
      acceptor.once('error', onError)
      if (capture?.mode !== 'tproxy') {
        acceptor.listen({ host: address, port, backlog: 4096, reusePort: this.#reusePort }, onListening)
        return
      }
      try {
        acceptor.listen({ fd: openTransparentSocket(address, port, 4096) }, onListening)
      } catch (err) {
        onError(err as Error)
      }
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

  /** True when a current listener is outbound: the app's own calls leave through it (Sidecar egress, capture 15001). */
  get hasOutbound(): boolean {
    for (const l of this.#listeners.values()) if (l.runtime.model.direction === 'outbound') return true
    return false
  }

  /**
   * Connections open on the traffic listeners, over every worker: Envoy's listener downstream_cx_active
   * summed, as Istio's agent polls it (admin, stats and health ports are not listeners here, as Istio
   * leaves them out of its sum).
   */
  get activeConnections(): number {
    let active = 0
    for (const l of this.#listeners.values()) active += l.stats?.active ?? l.sockets.size
    return active
  }

  /**
   * Envoy's `drain_listeners`: with `inboundOnly` (`?inboundonly`, as Istio's agent asks for it on
   * SIGTERM) every listener but the outbound ones drains, and the outbound ones keep serving the app's own
   * calls (new connections too); without it every listener drains. `plan` says how long they accept on
   * and when their connections are cut (listener-drain.ts). Resolves when the drained listeners'
   * connections have closed, or were cut. Readiness is false from now on.
   */
  drainListeners(plan: DrainPlan, inboundOnly: boolean): Promise<void> {
    this.#draining = true
    const drained = [...this.#listeners.values()].filter(
      (l) => !inboundOnly || l.runtime.model.direction !== 'outbound',
    )
    return Promise.all(drained.map((l) => drain(l, plan))).then(() => {})
  }

  /** Stops accepting everywhere and waits up to `drainMs` for in-flight requests to finish. */
  async drainAll(drainMs: number): Promise<void> {
    await this.drainListeners({ acceptMs: 0, cutMs: drainMs }, false)
  }
}

/** Starts a listener's drain, or brings forward the one it is in. */
function drain(l: BoundListener, plan: DrainPlan): Promise<void> {
  if (!l.bound) {
    l.runtime.draining = true
    return Promise.resolve()
  }
  if (l.drain === undefined) l.drain = new ListenerDrain(l, plan)
  else l.drain.bringForward(plan)
  return l.drain.done
}

/**
 * node:http keeps the list of its connections (what closeIdleConnections reads, and what its headersTimeout
 * check walks) from its 'listening' event on. A bind_to_port: false listener never listens (a capture
 * listener hands it its connections), nor does a capture listener's own server (its acceptor listens).
 * They get the same start, or a drain would leave their idle keep-alive connections open (and no
 * EXIT_ON_ZERO_ACTIVE_CONNECTIONS exit while a client keeps one), and a slow client's headers would never
 * time out.
 */
function trackConnectionsUnbound(server: Server): void {
  server.emit('listening')
}
