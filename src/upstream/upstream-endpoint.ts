// One upstream address of one cluster, with its undici connection pool, request counters and outlier state.

import { type LookupFunction, connect as netConnect, Socket } from 'node:net'
import type { buildConnector, Dispatcher } from 'undici'
import {
  type ConnectionPoolModel,
  type EndpointModel,
  UNLIMITED,
  type UpstreamTlsModel,
} from '../config/model.ts'
import type { StreamResetReason } from '../protocol/stream-reset-reason.ts'
import { type CounterBlock, privateBlock } from '../shared/shared-counters.ts'
import { type UpstreamTls, UpstreamTlsError } from '../tls/upstream-tls.ts'
import { httpAlpn } from '../tls/upstream-tls-model.ts'
import type { CircuitBreaker } from './circuit-breaker.ts'
import type { ClusterStats } from './cluster-stats.ts'
import { expiringClientFactory } from './connection-lifetime.ts'
import { Http2Pool, type Http2PoolOptions, type UpstreamDispatch } from './http2-pool.ts'
import type { LbEndpoint } from './lb/load-balancer.ts'
import type { HostMonitor } from './outlier-detection.ts'
import { Pool } from './undici-parts.ts'
import type { UpstreamProtocol } from './upstream-protocol.ts'

export interface PoolSettings {
  readonly connectTimeoutMs: number
  readonly connectionPool: ConnectionPoolModel
  readonly protocol: UpstreamProtocol
  /** The source address of upstream connections (Envoy's upstream_bind_config); undefined: the kernel's choice. */
  readonly sourceAddress?: string
  /** A response head above this many bytes is a protocol error, 502 UPE (bootstrap `limits.maxResponseHeadersKb`). */
  readonly maxResponseHeadersBytes: number
}

/**
 * Idle time before a pooled connection closes when the DestinationRule sets none: Envoy's default for a
 * cluster's common_http_protocol_options.idle_timeout (1 h), which Istio leaves in place unless
 * connectionPool.http.idleTimeout (or tcp.idleTimeout) is set (pilot cluster_traffic_policy.go).
 */
const defaultIdleTimeoutMs = 3_600_000
/** The longest timer Node can arm: an idle timeout of 0 means "never" in Istio. */
const maxTimerMs = 2_147_483_647

/** The undici Pool options for a connection pool policy. */
export function poolOptions(settings: PoolSettings): Pool.Options {
  const cp = settings.connectionPool
  const idle = cp.idleTimeoutMs === undefined ? defaultIdleTimeoutMs : cp.idleTimeoutMs || maxTimerMs
  return {
    connectTimeout: settings.connectTimeoutMs,
    // The route timeout governs; undici's own defaults (300 s) would cut long streams.
    headersTimeout: 0,
    bodyTimeout: 0,
    maxHeaderSize: settings.maxResponseHeadersBytes,
    keepAliveTimeout: idle,
    // A server's Keep-Alive hint may shorten the idle time, never lengthen it past the policy's.
    keepAliveMaxTimeout: idle,
    pipelining: 1,
    connections: cp.maxConnections >= UNLIMITED ? null : cp.maxConnections,
    ...(cp.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: cp.maxRequestsPerConnection } : {}),
    // Envoy's max_connection_duration: a connection is closed once it is that old and idle.
    ...(cp.maxConnectionDurationMs !== undefined
      ? { factory: expiringClientFactory(cp.maxConnectionDurationMs) }
      : {}),
    ...(cp.tcpKeepaliveTimeMs !== undefined
      ? { connect: { keepAlive: true, keepAliveInitialDelay: cp.tcpKeepaliveTimeMs } }
      : {}),
    // undici's connector takes the source address from the client's option, over any `connect` field.
    ...(settings.sourceAddress !== undefined ? { localAddress: settings.sourceAddress } : {}),
  }
}

/** The HTTP/2 session options for a connection pool policy. */
export function http2PoolOptions(settings: PoolSettings): Http2PoolOptions {
  const cp = settings.connectionPool
  return {
    connectTimeoutMs: settings.connectTimeoutMs,
    maxSessions: cp.maxConnections >= UNLIMITED ? 1 : Math.max(1, cp.maxConnections),
    maxStreamsPerSession: cp.maxRequestsPerConnection,
    maxConcurrentStreams: cp.maxConcurrentStreams,
    idleTimeoutMs: cp.idleTimeoutMs === undefined ? defaultIdleTimeoutMs : cp.idleTimeoutMs || maxTimerMs,
    maxSessionAgeMs: cp.maxConnectionDurationMs,
    maxResponseHeadersBytes: settings.maxResponseHeadersBytes,
    ...(settings.sourceAddress !== undefined ? { sourceAddress: settings.sourceAddress } : {}),
  }
}

/** The TLS an endpoint originates: its model, and the runtime's contexts that build its connections. */
export interface EndpointTls {
  readonly model: UpstreamTlsModel
  readonly contexts: UpstreamTls
}

/** A key that is equal for two endpoints exactly when their pools would be configured alike. */
export function poolKey(
  address: string,
  port: number,
  settings: PoolSettings,
  tls?: UpstreamTlsModel,
): string {
  const cp = settings.connectionPool
  return [
    tls?.key ?? '',
    address,
    port,
    settings.connectTimeoutMs,
    cp.maxConnections,
    cp.maxRequestsPerConnection,
    cp.idleTimeoutMs,
    cp.maxConnectionDurationMs,
    cp.tcpKeepaliveTimeMs,
    cp.maxConcurrentStreams,
    settings.protocol,
    settings.sourceAddress ?? '',
  ].join('|')
}

/** Cells of an endpoint's counter block; the outlier detector's HostMonitor uses those from `outlierCells` on. */
const activeRequestsCell = 0
const totalRequestsCell = 1
const connectFailuresCell = 2
export const outlierCells = 3

export class UpstreamEndpoint implements LbEndpoint {
  readonly address: string
  readonly port: number
  /** `address:port`, as Envoy's %UPSTREAM_HOST% prints it. */
  readonly hostPort: string
  /** poolKey(): a reload keeps this endpoint (pool, counters, outlier state) while the key stays. */
  readonly key: string
  readonly protocol: UpstreamProtocol
  /** The weight the load balancers use: the configured one, lowered while warming up (slow start). */
  weight: number
  /** The endpoint's weight as configured (Envoy's weights are at least 1). */
  configuredWeight: number
  /** `region/zone/subzone`, or empty. */
  locality = ''
  /** The priority level the endpoint belongs to (locality failover). */
  priority = 0
  /** Its locality's weight within its level. */
  localityWeight = 1
  /** When (performance.now()) a reload added this endpoint to a running cluster; undefined for the first ones. */
  addedAt: number | undefined
  /**
   * The endpoint's counters (active and total requests, connect failures) then its outlier state, in
   * the proxy's SharedCounters: every worker counts the same host, as Envoy's host stats are per proxy.
   */
  readonly counters: CounterBlock
  /** Outlier detection state; undefined when the cluster has no outlierDetection. */
  outlier: HostMonitor | undefined
  readonly #breaker: CircuitBreaker
  /** Requests beyond this many wait for a connection (pending); HTTP/2 multiplexes, so none wait. */
  readonly #maxConnections: number
  readonly #settings: PoolSettings
  /** LOGICAL_DNS: where new connections go, instead of resolving `address` per connection. */
  #lookup: LookupFunction | undefined
  #http1: Pool | undefined
  #http2: Http2Pool | undefined
  /** The TLS its connections originate; undefined: plain text. */
  readonly tls: EndpointTls | undefined
  /** Its cluster's Envoy stats (requests, connections, response codes); undefined for a bare endpoint. */
  readonly clusterStats: ClusterStats | undefined

  constructor(
    address: string,
    port: number,
    weight: number,
    settings: PoolSettings,
    breaker: CircuitBreaker,
    tls?: EndpointTls,
    counters: CounterBlock = privateBlock(),
    clusterStats?: ClusterStats,
  ) {
    this.counters = counters
    this.clusterStats = clusterStats
    this.address = address
    this.port = port
    this.weight = Math.max(1, weight)
    this.configuredWeight = this.weight
    const host = address.includes(':') ? `[${address}]` : address
    this.hostPort = `${host}:${port}`
    this.key = poolKey(address, port, settings, tls?.model)
    this.tls = tls
    this.protocol = settings.protocol
    this.#settings = settings
    this.#breaker = breaker
    this.#maxConnections = settings.protocol === 'http2' ? UNLIMITED : settings.connectionPool.maxConnections
  }

  /** Takes the endpoint's place in the (re)compiled cluster: weight, locality and priority level. */
  placeIn(model: EndpointModel): void {
    this.configuredWeight = Math.max(1, model.weight)
    this.weight = this.configuredWeight
    this.locality = model.locality
    this.priority = model.priority
    this.localityWeight = model.localityWeight
  }

  /**
   * Makes this a LOGICAL_DNS host: each new connection goes where `lookup` says (the name's latest
   * first address), while open connections stay where they are. Set before the first request.
   */
  connectThrough(lookup: LookupFunction): void {
    this.#lookup = lookup
  }

  /** The HTTP/1.1 connection pool, opened on first use. */
  get http1(): Pool {
    if (this.#http1 === undefined) {
      const options = poolOptions(this.#settings)
      const lookup = this.#lookup
      if (lookup !== undefined) options.connect = { ...options.connect, lookup }
      if (this.tls !== undefined) options.connect = this.#tlsConnector(this.tls)
      this.#http1 = new Pool(`http://${this.hostPort}`, options)
      const stats = this.clusterStats
      if (stats !== undefined) {
        // Per connection, not per request: undici's pool tells of each client's connect and close.
        this.#http1.on('connect', () => stats.connectionOpened())
        this.#http1.on('disconnect', () => stats.connectionClosed())
        this.#http1.on('connectionError', () => stats.connectFailed())
      }
    }
    return this.#http1
  }

  /** The HTTP/2 sessions, opened on first use. */
  get http2(): Http2Pool {
    this.#http2 ??= new Http2Pool(`http://${this.hostPort}`, {
      ...http2PoolOptions(this.#settings),
      ...(this.#lookup !== undefined ? { lookup: this.#lookup } : {}),
      ...(this.tls !== undefined ? { connectSocket: this.#tlsSocketFactory(this.tls) } : {}),
      ...(this.clusterStats !== undefined ? { connectionEvents: this.clusterStats } : {}),
    })
    return this.#http2
  }

  /**
   * undici's connector for a TLS endpoint: a new connection takes the secure context current at that
   * moment (a rotated certificate applies to the next connection) and offers Istio's HTTP/1.1 ALPN.
   */
  #tlsConnector(tls: EndpointTls): buildConnector.connector {
    const timeoutMs = this.#settings.connectTimeoutMs
    const keepalive = this.#settings.connectionPool.tcpKeepaliveTimeMs
    return (_options, callback) => {
      let done = false
      const finish = (err: Error | undefined, socket: Socket): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        if (err === undefined) callback(null, socket)
        else {
          socket.destroy()
          callback(err, null)
        }
      }
      let socket: Socket
      try {
        socket = tls.contexts.connect(tls.model, httpAlpn.http1, this.#target(), (err) => finish(err, socket))
      } catch (err) {
        callback(err as Error, null)
        return
      }
      if (keepalive !== undefined) socket.setKeepAlive(true, keepalive)
      const timer = setTimeout(() => {
        const err = new Error('connect timeout') as Error & { code: string }
        err.code = 'UND_ERR_CONNECT_TIMEOUT'
        finish(err, socket)
      }, timeoutMs)
    }
  }

  /** The HTTP/2 pool's connections for a TLS endpoint: Istio's h2 ALPN, the handshake's failure reported. */
  #tlsSocketFactory(tls: EndpointTls): (onFailure: (err: Error) => void) => Socket {
    return (onFailure) => {
      let socket: Socket
      try {
        socket = tls.contexts.connect(tls.model, httpAlpn.http2, this.#target(), (err) => {
          if (err !== undefined) onFailure(err)
        })
      } catch (err) {
        onFailure(err as Error)
        socket = new Socket()
        queueMicrotask(() => socket.destroy())
      }
      return socket
    }
  }

  #target(): { host: string; port: number; lookup?: LookupFunction; localAddress?: string } {
    const host = this.address
    const source = this.#settings.sourceAddress
    const target =
      source === undefined ? { host, port: this.port } : { host, port: this.port, localAddress: source }
    return this.#lookup === undefined ? target : { ...target, lookup: this.#lookup }
  }

  /**
   * Opens a connection for TCP proxying: plain, or TLS with the endpoint's settings and the TCP ALPN.
   * `onReady` is called once, when the connection (and its handshake) is up or has failed.
   */
  connectTcp(onReady: (err: Error | undefined) => void): Socket {
    return this.#connectSocket(this.tls?.model.tcpAlpn ?? [], onReady)
  }

  /**
   * Opens a connection for one HTTP/1.1 Upgrade (WebSocket): plain, or TLS with the endpoint's settings
   * and the HTTP/1.1 ALPN its pool offers (Envoy sends an upgrade through the cluster's transport socket).
   * `onReady` is called once, when the connection (and its handshake) is up or has failed.
   */
  connectUpgrade(onReady: (err: Error | undefined) => void): Socket {
    return this.#connectSocket(httpAlpn.http1, onReady)
  }

  #connectSocket(alpn: readonly string[], ready: (err: Error | undefined) => void): Socket {
    const stats = this.clusterStats
    let socket: Socket | undefined
    // Counted as the pools count theirs: a failed attempt, or an open connection until it closes.
    const onReady =
      stats === undefined
        ? ready
        : (err: Error | undefined): void => {
            if (err !== undefined) stats.connectFailed()
            else {
              stats.connectionOpened()
              socket?.once('close', () => stats.connectionClosed())
            }
            ready(err)
          }
    socket = this.#openSocket(alpn, onReady)
    return socket
  }

  #openSocket(alpn: readonly string[], onReady: (err: Error | undefined) => void): Socket {
    const tls = this.tls
    if (tls === undefined) {
      const socket = netConnect({ ...this.#target(), allowHalfOpen: true, noDelay: true })
      const onError = (err: Error): void => {
        socket.off('connect', onConnect)
        onReady(err)
      }
      const onConnect = (): void => {
        socket.off('error', onError)
        onReady(undefined)
      }
      socket.once('error', onError)
      socket.once('connect', onConnect)
      return socket
    }
    try {
      return tls.contexts.connect(tls.model, alpn, this.#target(), onReady)
    } catch (err) {
      const socket = new Socket()
      queueMicrotask(() => {
        onReady(err instanceof UpstreamTlsError ? err : UpstreamTlsError.from(err as Error))
        socket.destroy()
      })
      return socket
    }
  }

  /** Whether a request from a downstream of this HTTP version goes out over HTTP/2. */
  usesHttp2(downstreamHttp2: boolean): boolean {
    const protocol = this.protocol
    return protocol === 'http2' || (protocol === 'downstream' && downstreamHttp2)
  }

  /**
   * Sends one request over the cluster's protocol (`downstreamHttp2` decides for `downstream`); the
   * handler hears of it through undici's dispatch-handler callbacks either way.
   */
  dispatch(request: UpstreamDispatch, handler: Dispatcher.DispatchHandler, downstreamHttp2: boolean): void {
    if (this.usesHttp2(downstreamHttp2)) {
      this.http2.dispatch(request, handler)
      return
    }
    // undici reads a Buffer, a Readable or an async iterable body alike; its type lists only the first two.
    this.http1.dispatch(request as Dispatcher.DispatchOptions, handler)
  }

  /** Set while outlier detection has this endpoint ejected. */
  get ejected(): boolean {
    return this.outlier?.ejected === true
  }

  /** Requests dispatched and not yet finished by any worker, pending ones included (least-request, /clusters). */
  get activeRequests(): number {
    return this.counters.cells[this.counters.base + activeRequestsCell]
  }

  get totalRequests(): number {
    return this.counters.cells[this.counters.base + totalRequestsCell]
  }

  get connectFailures(): number {
    return this.counters.cells[this.counters.base + connectFailuresCell]
  }

  /** Whether the cluster's circuit breakers let one more request go to this endpoint (else 503 UO). */
  admits(): boolean {
    return this.#breaker.admits(this.activeRequests, this.#maxConnections)
  }

  /** A request to this endpoint starts: counted here and in the cluster's circuit breaker. */
  acquire(): void {
    this.clusterStats?.requestStarted()
    const { cells, base } = this.counters
    const active = Atomics.add(cells, base + activeRequestsCell, 1)
    Atomics.add(cells, base + totalRequestsCell, 1)
    this.#breaker.startRequest(active >= this.#maxConnections)
  }

  /** The exchange ended (completed, failed or reset); a request waiting in the pool takes the connection. */
  release(): void {
    const { cells, base } = this.counters
    const active = Atomics.sub(cells, base + activeRequestsCell, 1)
    this.#breaker.endRequest(active > this.#maxConnections)
  }

  /** The upstream answered with `status` (outlier detection counts 5xx and gateway errors). */
  reportStatus(status: number): void {
    if (this.outlier !== undefined) this.outlier.putHttpStatus(status)
  }

  /** The exchange failed before a response, for `kind` (connect failures and timeouts count here). */
  reportFailure(kind: StreamResetReason): void {
    if (kind === 'connectFailure')
      Atomics.add(this.counters.cells, this.counters.base + connectFailuresCell, 1)
    if (this.outlier !== undefined)
      this.outlier.putLocalOriginFailure(kind === 'timeout' ? 'timeout' : 'connectFailed')
  }

  /** Closes the pools once their in-flight requests finish. */
  async close(): Promise<void> {
    await Promise.all([this.#http1?.close(), this.#http2?.close()])
  }
}
