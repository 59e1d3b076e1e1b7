// One listener's drain as Envoy runs it: its responses close their connections, it accepts on through a graceful drain period, then stops accepting, and what is still open is cut at the deadline.

import type { Server } from 'node:http'
import type { Server as NetServer, Socket } from 'node:net'
import type { ListenerRuntime } from './listener-runtime.ts'

/**
 * When a draining listener stops accepting and when its connections are cut, in ms from the drain's
 * request. Envoy's admin `drain_listeners` (source/server/admin/listeners_handler.cc): without
 * `graceful` the listeners stop at once (stopListeners); with it the drain manager's drain sequence
 * runs for --drain-time-s (Istio passes terminationDrainDuration and `--drain-strategy immediate`,
 * pkg/envoy/proxy.go), during which the listeners keep accepting and every connection is drain-closed
 * (HTTP/1.1 `Connection: close`, HTTP/2 GOAWAY), and only then are they stopped; `skip_exit` leaves
 * them accepting. Stopping a listener cuts no connection: Istio's agent kills Envoy at the end of
 * terminationDrainDuration (pkg/envoy/agent.go, terminate), which `cutMs` stands for.
 */
export interface DrainPlan {
  /** How long the listener keeps accepting: 0 stops it at once, Infinity never (skip_exit). */
  readonly acceptMs: number
  /** When the connections still open are cut; undefined: never, they close as their requests end. */
  readonly cutMs: number | undefined
}

/** What a drain works on: the listener manager's bound listener. */
export interface DrainTarget {
  readonly runtime: ListenerRuntime
  readonly server: Server
  readonly sockets: Set<Socket>
  /** A capture listener's listening socket (its server never listens). */
  readonly acceptor: NetServer | undefined
}

/**
 * Between requests while draining: a connection that finishes a response begun before the drain (so
 * without `Connection: close`) closes once idle this long, through node:http's keep-alive timeout.
 * Unlike a sweep of idle connections this never touches a connection accepted during the drain that has
 * not sent its request yet (node:http counts those as idle too).
 */
const DRAINING_KEEP_ALIVE_MS = 1

export class ListenerDrain {
  readonly #target: DrainTarget
  /** Whether the server listened itself (a capture listener's chain and bind_to_port false ones never do). */
  readonly #listened: boolean
  #acceptUntil = Number.POSITIVE_INFINITY
  #cutAt = Number.POSITIVE_INFINITY
  #stopTimer: NodeJS.Timeout | undefined
  #cutTimer: NodeJS.Timeout | undefined
  #idleTimer: NodeJS.Timeout | undefined
  #poll: NodeJS.Timeout | undefined
  #accepting = true
  #ended = false
  #resolve: () => void = () => {}
  /** Resolves when every connection has closed, or was cut. */
  readonly done: Promise<void>

  constructor(target: DrainTarget, plan: DrainPlan) {
    this.#target = target
    this.#listened = target.server.listening
    this.done = new Promise((resolve) => {
      this.#resolve = resolve
    })
    target.runtime.draining = true
    // Sessions open now get GOAWAY (streams in flight finish); one that starts later gets it after its
    // first streams (Http2Downstream).
    target.runtime.http2IfStarted?.drain()
    // Keep-alive connections idle now close as the drain starts; a listener that never listened waits a
    // quarter of a timed drain, as Envoy spreads its drain-close of idle connections over the first
    // quarter of the window (DrainManagerImpl::addOnDrainCloseCb): a client still sending here, its
    // endpoint removal not yet loaded, keeps its connections for its last requests instead of racing
    // their close.
    const idleCloseAfterMs = this.#listened || plan.cutMs === undefined ? 0 : plan.cutMs / 4
    this.#idleTimer = setTimeout(this.#closeIdle, idleCloseAfterMs)
    this.bringForward(plan)
  }

  /** A later drain of the same listener only brings its steps forward (the exit's drainAll after the SIGTERM drain). */
  bringForward(plan: DrainPlan): void {
    if (this.#ended) return
    const now = performance.now()
    const acceptUntil = now + plan.acceptMs
    if (acceptUntil < this.#acceptUntil) {
      this.#acceptUntil = acceptUntil
      clearTimeout(this.#stopTimer)
      if (plan.acceptMs <= 0) this.#stopAccepting()
      else if (Number.isFinite(plan.acceptMs))
        this.#stopTimer = setTimeout(this.#stopAccepting, plan.acceptMs)
    }
    if (plan.cutMs !== undefined && now + plan.cutMs < this.#cutAt) {
      this.#cutAt = now + plan.cutMs
      clearTimeout(this.#cutTimer)
      this.#cutTimer = setTimeout(this.#cut, plan.cutMs)
    }
  }

  readonly #closeIdle = (): void => {
    const server = this.#target.server
    server.closeIdleConnections()
    server.keepAliveTimeout = DRAINING_KEEP_ALIVE_MS
  }

  /** Envoy's stopListeners: no new connection; the drain ends when the last open one closes. */
  readonly #stopAccepting = (): void => {
    if (!this.#accepting) return
    this.#accepting = false
    const { server, sockets, acceptor } = this.#target
    acceptor?.close()
    if (this.#listened) server.close(() => this.#end())
    else
      this.#poll = setInterval(() => {
        if (sockets.size === 0) this.#end()
      }, 50)
  }

  readonly #cut = (): void => {
    this.#stopAccepting()
    const { server, sockets, runtime } = this.#target
    server.closeAllConnections()
    runtime.http2IfStarted?.destroy()
    for (const socket of sockets) socket.destroy()
    this.#end()
  }

  #end(): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#stopTimer)
    clearTimeout(this.#cutTimer)
    clearTimeout(this.#idleTimer)
    clearInterval(this.#poll)
    // A server that never listened stops its connection tracking (trackConnectionsUnbound) as close does.
    if (!this.#listened) this.#target.server.close()
    this.#resolve()
  }
}
