// Opaque TCP proxying of one downstream connection: pick the route's cluster and endpoint, connect in time, then tunnel.

import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { denialDetails } from '../authz/authz-policies.ts'
import type { TcpRoute } from '../route/tcp-route-table.ts'
import { log } from '../telemetry/log.ts'
import { ResponseFlag } from '../telemetry/response-flags.ts'
import type { WorkloadMetadata } from '../telemetry/workload-metadata.ts'
import type { Cluster } from '../upstream/cluster.ts'
import { transportFailureReason } from '../upstream/failure.ts'
import { PEER_EXCHANGE_ALPN, PeerExchange } from './peer-exchange.ts'
import { tcpDenial } from './tcp-authorization.ts'
import type { TcpContext } from './tcp-context.ts'
import type { TcpConnectionStats } from './tcp-stats.ts'
import { Tunnel } from './tunnel.ts'

/** Envoy's tcp_proxy idle_timeout when the DestinationRule sets none (Istio keeps the default: 1 h). */
export const defaultTcpIdleTimeoutMs = 3_600_000

/** The idle timeout and maximum duration of a tunnel to `cluster` (connectionPool.tcp; 0 disables). */
export function tunnelLimits(cluster: Cluster): { idleTimeoutMs: number; maxDurationMs: number } {
  const pool = cluster.model.policy.connectionPool
  return {
    idleTimeoutMs: pool.idleTimeoutMs ?? defaultTcpIdleTimeoutMs,
    maxDurationMs: pool.maxConnectionDurationMs ?? 0,
  }
}

/**
 * One object per proxied connection. Failures before the upstream connection exists close the
 * downstream, as Envoy's tcp_proxy does, with its response flag on the context: NR (no route),
 * NC (no such cluster), UO (the cluster already has connectionPool.tcp.maxConnections upstream
 * connections), UH (no endpoint), UF (refused, unreachable or connect timeout). The upstream
 * connection holds one of the cluster's connection slots from the connect until it closes.
 */
export class TcpProxy {
  readonly #ctx: TcpContext
  readonly #initial: Buffer | undefined
  #cluster: Cluster | undefined
  #upstream: Socket | undefined
  #connectTimer: NodeJS.Timeout | undefined
  #routedAt = 0
  /** The counters this connection is counted in while it holds a slot (cluster's, endpoint's). */
  #clusterStats: TcpConnectionStats | undefined
  #endpointStats: TcpConnectionStats | undefined

  /** `initial`: bytes read while sniffing that could not be put back on the downstream socket. */
  constructor(ctx: TcpContext, initial?: Buffer) {
    this.#ctx = ctx
    this.#initial = initial
  }

  /** Routes the connection by `route` (undefined when none matched) and connects upstream. */
  start(route: TcpRoute | undefined): void {
    const ctx = this.#ctx
    const down = ctx.downstream
    down.on('error', ignore)
    // Envoy's network RBAC filter sits before tcp_proxy: a denied connection is closed, with no response flag.
    const denied = tcpDenial(ctx)
    if (denied !== undefined) {
      this.#fail(undefined, denialDetails(denied))
      return
    }
    // Istio's stats filter sits after RBAC in the network filter chain: a denied connection is never counted open.
    ctx.opened = true
    ctx.listener.observers.tcpOpened(ctx)
    if (route === undefined) {
      this.#fail(ResponseFlag.NoRouteFound, 'filter_chain_not_found')
      return
    }
    ctx.route = route
    const destination = route.pick()
    if (destination === undefined) {
      this.#fail(ResponseFlag.NoRouteFound, 'no_destination')
      return
    }
    ctx.clusterName = destination.clusterName
    const cluster = ctx.listener.clusters.get(destination.clusterName)
    if (cluster === undefined) {
      this.#fail(ResponseFlag.NoClusterFound, 'cluster_not_found')
      return
    }
    this.#cluster = cluster
    // Envoy checks the connections circuit breaker before choosing a host.
    if (!cluster.breaker.tryStartConnection()) {
      this.#fail(ResponseFlag.UpstreamOverflow, 'upstream_cx_overflow')
      return
    }
    const endpoint = cluster.pick(ctx)
    if (endpoint === undefined) {
      cluster.breaker.endConnection()
      this.#fail(ResponseFlag.NoHealthyUpstream, 'no_healthy_upstream')
      return
    }
    ctx.upstream = endpoint
    // Istio's principals: ISTIO_MUTUAL or MUTUAL presents this workload's certificate upstream.
    ctx.upstreamMtls = endpoint.tls !== undefined && endpoint.tls.model.mode !== 'SIMPLE'
    this.#routedAt = performance.now()
    const tcpStats = ctx.listener.tcpStats
    const clusterStats = tcpStats.of(cluster)
    const endpointStats = tcpStats.of(endpoint)
    clusterStats.active++
    clusterStats.total++
    endpointStats.active++
    endpointStats.total++
    this.#clusterStats = clusterStats
    this.#endpointStats = endpointStats
    // Plain, or TLS with the endpoint's DestinationRule tls / auto-mTLS (handshake done before the tunnel).
    this.#connecting = true
    const up = endpoint.connectTcp(this.#onConnectResult)
    this.#upstream = up
    up.once('close', this.#onUpstreamClose)
    down.once('close', this.#onDownstreamCloseWhileConnecting)
    this.#connectTimer = setTimeout(this.#onConnectTimeout, cluster.model.connectTimeoutMs)
  }

  /** Set from the connect until it succeeds, fails, times out or is abandoned. */
  #connecting = false
  /** The connection is over (both sides closed, or it failed): the end time is taken and observers told, once. */
  #ended(): void {
    const ctx = this.#ctx
    if (ctx.endTime !== undefined) return
    ctx.endTime = performance.now()
    ctx.listener.observers.tcpEnded(ctx)
  }

  readonly #onConnectResult = (err: Error | undefined): void => {
    if (!this.#connecting) return
    if (err === undefined) this.#onConnect()
    else this.#onConnectError(err)
  }

  readonly #onConnect = (): void => {
    const ctx = this.#ctx
    const up = this.#upstream as Socket
    this.#stopConnecting()
    ctx.connectMs = Math.round(performance.now() - this.#routedAt)
    ctx.upstreamLocalAddress = `${up.localAddress}:${up.localPort}`
    // The upstream sidecar took ALPN istio-peer-exchange: frames first, then the tunnel (Istio's TCPClusterMx).
    if ((up as TLSSocket).alpnProtocol === PEER_EXCHANGE_ALPN) {
      const exchange = new PeerExchange(up, ctx.listener.peerMetadata, this.#onPeerExchanged)
      const abort = (): void => exchange.abort()
      ctx.downstream.once('close', abort)
      this.#stopExchange = () => ctx.downstream.off('close', abort)
      exchange.start()
      return
    }
    this.#tunnel(undefined)
  }

  /** Removes the exchange's watch on the downstream, once it is over. */
  #stopExchange: (() => void) | undefined

  readonly #onPeerExchanged = (peer: WorkloadMetadata | undefined, leftover: Buffer | undefined): void => {
    this.#stopExchange?.()
    this.#ctx.upstreamPeerMetadata = peer
    this.#tunnel(leftover)
  }

  #tunnel(fromUpstream: Buffer | undefined): void {
    const ctx = this.#ctx
    new Tunnel(ctx, ctx.downstream, this.#upstream as Socket, {
      ...tunnelLimits(this.#cluster as Cluster),
      initial: this.#initial,
      initialFromUpstream: fromUpstream,
      onClose: this.#onTunnelClosed,
    }).start()
  }

  readonly #onConnectError = (err: Error): void => {
    this.#stopConnecting()
    this.#upstreamFailed(transportFailureReason(err) ?? err.message)
  }

  readonly #onConnectTimeout = (): void => {
    this.#connectTimer = undefined
    this.#stopConnecting()
    this.#upstream?.destroy()
    this.#upstreamFailed('connect timeout')
  }

  /** The client left before the upstream connection was made: abandon it. */
  readonly #onDownstreamCloseWhileConnecting = (): void => {
    this.#stopConnecting()
    this.#upstream?.destroy()
    const ctx = this.#ctx
    ctx.terminationDetails = 'downstream_closed_before_upstream_connected'
    this.#ended()
  }

  /** However the upstream socket ends (failed connect, abandoned, tunnel closed), its slot is free again. */
  readonly #onUpstreamClose = (): void => {
    ;(this.#cluster as Cluster).breaker.endConnection()
    if (this.#clusterStats !== undefined) this.#clusterStats.active--
    if (this.#endpointStats !== undefined) this.#endpointStats.active--
  }

  readonly #onTunnelClosed = (): void => {
    const ctx = this.#ctx
    this.#ended()
    log.debug(
      `tcp ${ctx.listener.model.name} ${ctx.clusterName} ${ctx.upstream?.hostPort ?? '-'} ` +
        `received=${ctx.bytesReceived} sent=${ctx.bytesSent}${ctx.terminationDetails === '' ? '' : ` ${ctx.terminationDetails}`}`,
    )
  }

  #stopConnecting(): void {
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer)
    this.#connectTimer = undefined
    this.#connecting = false
    const up = this.#upstream
    // A late error on an abandoned socket must not be thrown.
    up?.on('error', ignore)
    this.#ctx.downstream.off('close', this.#onDownstreamCloseWhileConnecting)
  }

  #upstreamFailed(reason: string): void {
    this.#ctx.upstreamTransportFailureReason = reason
    this.#ctx.upstream?.reportFailure('connectFailure')
    if (this.#clusterStats !== undefined) this.#clusterStats.connectFailures++
    if (this.#endpointStats !== undefined) this.#endpointStats.connectFailures++
    // Istio leaves tcp_proxy's max_connect_attempts at 1: the failed attempt was the last, so Envoy adds URX
    // (source/common/tcp_proxy/tcp_proxy.cc, Filter::onConnectMaxAttempts), and logs `UF,URX`.
    this.#ctx.setFlag(ResponseFlag.UpstreamRetryLimitExceeded)
    this.#fail(ResponseFlag.UpstreamConnectionFailure, `upstream_connect_failure{${reason}}`)
  }

  #fail(flag: ResponseFlag | undefined, details: string): void {
    const ctx = this.#ctx
    if (flag !== undefined) ctx.setFlag(flag)
    ctx.terminationDetails = details
    this.#ended()
    log.debug(`tcp ${ctx.listener.model.name} ${ctx.clusterName || '-'}: ${flag ?? '-'} ${details}`)
    ctx.downstream.destroy()
  }
}

function ignore(): void {}
