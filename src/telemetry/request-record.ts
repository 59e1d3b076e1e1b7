// What telemetry reads of a finished HTTP request: the http layer's RequestContext implements it, so observers need not import http.

import type { PeerIdentity } from '../protocol/peer-identity.ts'
import type { ResponseFlag } from './response-flags.ts'
import type { DirectionTelemetry } from './telemetry-policy.ts'
import type { SampledTrace } from './trace-context.ts'
import type { WorkloadMetadata } from './workload-metadata.ts'

/** `inbound`: a request to this workload (Istio's reporter=destination); `outbound`: one it makes (reporter=source). */
export type TrafficDirection = 'inbound' | 'outbound'

/**
 * A request as observers see it once it has ended (RequestContext implements this). Every field is read
 * when the observer runs; an observer keeps nothing of it but what it copies.
 */
export interface RequestRecord {
  readonly direction: TrafficDirection
  /** What to observe of this request: its model's telemetry for its direction, as when it started. */
  readonly telemetry: DirectionTelemetry
  /** The listener's name (`inbound|9080||`, `outbound|9080||`…, as the model names it). */
  readonly listenerName: string
  readonly method: string
  /** The request target as routed: path and query (after normalization). */
  readonly url: string
  readonly path: string
  /** The Host / :authority header, or ''. */
  readonly authority: string
  /** `http` or `https`. */
  readonly scheme: string
  /** True when the downstream spoke HTTP/2. */
  readonly http2: boolean
  /** Envoy's %PROTOCOL%: `HTTP/1.1`, `HTTP/1.0` or `HTTP/2`. */
  readonly protocol: string
  /** A request header's value (lowercase name; several values joined with `, `), or undefined. */
  header(name: string): string | undefined

  /** performance.now() when the request's headers arrived; wall time is `performance.timeOrigin + startTime`. */
  readonly startTime: number
  /** performance.now() when the request ended (response complete, or either side gone); -1 before. */
  readonly endTime: number
  /** The status sent downstream (0 when none was: the client left first, or the stream was reset). */
  readonly responseStatus: number
  readonly responseFlags: readonly ResponseFlag[]
  /** Envoy's %RESPONSE_CODE_DETAILS%, or ''. */
  readonly responseCodeDetails: string
  /** The gRPC status the response carried (header or trailer), or undefined for non-gRPC responses. */
  readonly grpcStatus: string | undefined
  /** Request body bytes received from the downstream (Envoy's %BYTES_RECEIVED%). */
  readonly requestBodyBytes: number
  /** Response body bytes sent to the downstream (Envoy's %BYTES_SENT%). */
  readonly responseBodyBytes: number
  /** gRPC messages received from the downstream and sent to it (istio_request_messages_total…); 0 when not gRPC. */
  readonly requestMessages: number
  readonly responseMessages: number

  readonly requestId: string
  /** The route's name (VirtualService http[].name), or ''. */
  readonly routeName: string
  /**
   * The route's name in the live view (`outrigger stat --by route`): `<VirtualService namespace/name>/<http[]
   * name or index>`, or Envoy's route name for a route no VirtualService made (`default`, `allow_any`…); '' with none.
   */
  readonly routeStatName: string
  /** The cluster the router chose (`outbound|9080||reviews.default.svc.cluster.local`), or ''. */
  readonly clusterName: string
  /** The service host the request was routed to (the destination's FQDN), or ''. */
  readonly destinationService: string
  /** `address:port` of the upstream host of the last attempt, or undefined when none was chosen. */
  readonly upstreamHostPort: string | undefined
  /** `address:port` of the last attempt's upstream connection (Envoy's %UPSTREAM_LOCAL_ADDRESS%), when known. */
  readonly upstreamLocalAddress: string | undefined
  /** Why the upstream connection failed (a TLS handshake's `TLS_error:|…`), or ''. */
  readonly upstreamTransportFailureReason: string
  /** Upstream attempts made (1 + retries); 0 when no cluster was reached. */
  readonly attemptCount: number
  /** Milliseconds from dispatch to upstream response headers; -1 when there were none. */
  readonly upstreamServiceTime: number

  /** The downstream connection's remote and local `address:port`. */
  readonly downstreamRemoteAddress: string
  readonly downstreamLocalAddress: string
  /** The SNI of the downstream TLS connection (Envoy's %REQUESTED_SERVER_NAME%), or undefined on plain text. */
  readonly requestedServerName: string | undefined
  /** The mTLS peer of the downstream connection; undefined on plain text. */
  readonly peer: PeerIdentity | undefined
  /** The downstream workload's metadata (inbound, from its peer-metadata headers); undefined when not a mesh workload. */
  readonly downstreamPeerMetadata: WorkloadMetadata | undefined
  /** The upstream workload's metadata (outbound, from its response's peer-metadata headers); undefined when unknown. */
  readonly upstreamPeerMetadata: WorkloadMetadata | undefined
  /** True when the upstream connection of the last attempt was mTLS (Istio's connection_security_policy for reporter=source). */
  readonly upstreamMtls: boolean
  /** The request's span when it was sampled for tracing; undefined otherwise. */
  readonly trace: SampledTrace | undefined
}
