// What telemetry reads of an opaque TCP connection: the tcp layer's TcpContext implements it.

import type { PeerIdentity } from '../protocol/peer-identity.ts'
import type { TrafficDirection } from './request-record.ts'
import type { ResponseFlag } from './response-flags.ts'
import type { DirectionTelemetry } from './telemetry-policy.ts'
import type { WorkloadMetadata } from './workload-metadata.ts'

/** A proxied TCP connection as observers see it (when opened, and again once both sides have closed or it failed). */
export interface TcpRecord {
  readonly direction: TrafficDirection
  readonly listenerName: string
  /**
   * True when observers were told of the opening: the connection passed authorization, as Istio's stats
   * filter sits after RBAC. A denied connection still ends (the access log records it).
   */
  readonly opened: boolean
  /** performance.now() when the connection was accepted. */
  readonly startTime: number
  /** performance.now() when both sides had closed; undefined while the connection lives. */
  readonly endTime: number | undefined
  /** Bytes read from the downstream (Envoy's %BYTES_RECEIVED%; istio_tcp_received_bytes_total). */
  readonly bytesReceived: number
  /** Bytes written to the downstream (%BYTES_SENT%; istio_tcp_sent_bytes_total). */
  readonly bytesSent: number
  readonly responseFlags: readonly ResponseFlag[]
  /** Why the connection ended early (Envoy's %CONNECTION_TERMINATION_DETAILS%), or ''. */
  readonly terminationDetails: string
  readonly clusterName: string
  /** The service host the connection was routed to, or ''. */
  readonly destinationService: string
  readonly upstreamHostPort: string | undefined
  readonly downstreamRemoteAddress: string
  readonly downstreamLocalAddress: string
  readonly sni: string | undefined
  /** The mTLS peer (the proxy terminated mTLS); undefined otherwise. */
  readonly peer: PeerIdentity | undefined
  /** The other side's workload metadata from the istio-peer-exchange, when there was one. */
  readonly downstreamPeerMetadata: WorkloadMetadata | undefined
  readonly upstreamPeerMetadata: WorkloadMetadata | undefined
  /** True when the upstream connection is mTLS. */
  readonly upstreamMtls: boolean
  /** What to observe of this connection: its model's telemetry for its direction. */
  readonly telemetry: DirectionTelemetry
}
