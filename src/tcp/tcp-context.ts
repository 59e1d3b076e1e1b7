// Per-connection state of one proxied TCP connection: references, what detection and routing chose, byte counts, flags.

import type { Socket } from 'node:net'
import type { Model } from '../config/model.ts'
import type { DetectedProtocol } from '../protocol/detected-protocol.ts'
import { originalDestination } from '../protocol/original-destination.ts'
import type { PeerIdentity } from '../protocol/peer-identity.ts'
import type { ConnectionFacts, TcpRoute } from '../route/tcp-route-table.ts'
import { clusterService } from '../telemetry/cluster-service.ts'
import type { ResponseFlag } from '../telemetry/response-flags.ts'
import type { TcpRecord } from '../telemetry/tcp-record.ts'
import type { DirectionTelemetry } from '../telemetry/telemetry-policy.ts'
import type { WorkloadMetadata } from '../telemetry/workload-metadata.ts'
import type { LbRequest } from '../upstream/lb/hash-policy.ts'
import type { UpstreamEndpoint } from '../upstream/upstream-endpoint.ts'

import type { TcpListener } from './tcp-listener.ts'

const noHeaders: readonly string[] = []

/** Byte counts and the end reason of a tunnel; TcpContext has them, and so does an upgraded HTTP request. */
export interface TunnelStats {
  /** Envoy's %BYTES_RECEIVED%: bytes read from the downstream (and sent upstream). */
  bytesReceived: number
  /** Envoy's %BYTES_SENT%: bytes from the upstream written to the downstream. */
  bytesSent: number
  /** Why the tunnel ended early (`idle_timeout`, `max_duration_timeout`, …); empty for a normal close. */
  terminationDetails: string
}

/**
 * The telemetry of a TCP connection reads this object (istio_tcp_* metrics, the access log): it holds
 * references and counters only. It is also what a load balancer's hash policy reads (source IP).
 */
export class TcpContext implements ConnectionFacts, LbRequest, TunnelStats, TcpRecord {
  readonly listener: TcpListener
  /** The model the connection was routed with, even if a reload swaps it meanwhile. */
  readonly model: Model
  readonly downstream: Socket
  readonly startTime = performance.now()
  /** What the first bytes showed (`tcp` on a port declared TCP, which is never sniffed). */
  protocol: DetectedProtocol = 'tcp'
  sni: string | undefined = undefined
  alpn: readonly string[] = []
  /** The address the client connected to: the listener's, or the original destination under capture. */
  destinationAddress: string | undefined
  route: TcpRoute | undefined = undefined
  clusterName = ''
  upstream: UpstreamEndpoint | undefined = undefined
  /** Milliseconds from routing to the upstream connection being established; -1 if it never was. */
  connectMs = -1
  bytesReceived = 0
  bytesSent = 0
  terminationDetails = ''
  responseFlags: ResponseFlag[] = []
  /** performance.now() when both sides had closed; undefined while the connection lives. */
  endTime: number | undefined = undefined
  hashCookie: string | undefined = undefined
  /** The mTLS peer (PeerAuthentication terminated the connection); undefined on plain text and passed-through TLS. */
  peer: PeerIdentity | undefined = undefined
  /** The other side's workload metadata, from the istio-peer-exchange when there was one. */
  downstreamPeerMetadata: WorkloadMetadata | undefined = undefined
  upstreamPeerMetadata: WorkloadMetadata | undefined = undefined
  /** True when the upstream connection is mTLS. */
  upstreamMtls = false
  /** The upstream connection's local `address:port`, once connected. */
  upstreamLocalAddress: string | undefined = undefined
  /** Why the upstream connection failed, or ''. */
  upstreamTransportFailureReason = ''
  /** Set when observers were told of the opening (the connection passed authorization). */
  opened = false
  readonly downstreamRemoteAddress: string
  readonly downstreamLocalAddress: string

  constructor(listener: TcpListener, downstream: Socket) {
    this.listener = listener
    this.model = listener.proxyModel
    this.downstream = downstream
    // A captured connection's local address is the capture listener's: it was going to its original destination.
    const original = originalDestination(downstream)
    this.destinationAddress = original?.address ?? downstream.localAddress
    // Read while the socket is open: once it has closed (when the access log reads them) they are gone.
    this.downstreamRemoteAddress = `${downstream.remoteAddress}:${downstream.remotePort}`
    this.downstreamLocalAddress =
      original === undefined
        ? `${downstream.localAddress}:${downstream.localPort}`
        : `${original.address.includes(':') ? `[${original.address}]` : original.address}:${original.port}`
  }

  get direction(): TcpRecord['direction'] {
    return this.listener.model.direction
  }

  get listenerName(): string {
    return this.listener.model.name
  }

  /** The telemetry policy of the model the connection was routed with, for its direction. */
  get telemetry(): DirectionTelemetry {
    return this.model.telemetry[this.direction]
  }

  /** The service host of the chosen cluster (`outbound|port|subset|host`), or ''. */
  get destinationService(): string {
    return clusterService(this.clusterName)
  }

  get upstreamHostPort(): string | undefined {
    return this.upstream?.hostPort
  }

  setFlag(flag: ResponseFlag): void {
    if (!this.responseFlags.includes(flag)) this.responseFlags.push(flag)
  }

  /** The LbRequest view: a TCP connection has no headers or query; hash policies see its source address. */
  get req(): LbRequest['req'] {
    return { rawHeaders: noHeaders, socket: this.downstream }
  }

  rawHeader(): string | undefined {
    return undefined
  }

  queryParam(): string | undefined {
    return undefined
  }
}
