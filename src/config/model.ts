// The immutable Model the data path reads: listeners, route tables and clusters compiled from config.

import type { AuthzPolicySet } from '../authz/authz-policies.ts'
import type { RouteTable } from '../route/route-table.ts'
import type { TcpRouteTable } from '../route/tcp-route-table.ts'
import type { TelemetryPolicy } from '../telemetry/telemetry-policy.ts'
import type { DownstreamTlsModel } from '../tls/tls-model.ts'
import type { UpstreamTlsModel } from '../tls/upstream-tls-model.ts'
import type { DnsTable } from './compile/dns-table.ts'
import type { RequestAuthenticationModel } from './jwt-policy.ts'
import type { ConfigMessage } from './messages.ts'

export type { DownstreamTlsModel, TlsCredentials, TlsFilesModel } from '../tls/tls-model.ts'
export type { UpstreamTlsModel } from '../tls/upstream-tls-model.ts'

/** Who this proxy serves, from the bootstrap's `node`. */
export interface NodeIdentity {
  readonly workload: string
  readonly namespace: string
  readonly serviceAccount: string
  readonly labels: Readonly<Record<string, string>>
  readonly cluster: string
  readonly trustDomain: string
  /** `region/zone/subzone`, or empty when unknown. */
  readonly locality: string
}

export type TrafficDirection = 'inbound' | 'outbound'

/** A port the proxy listens on, and how it treats what arrives there. */
export interface ListenerModel {
  /** Envoy-style name, e.g. `0.0.0.0_9080` or `127.0.0.1_15001`. */
  readonly name: string
  readonly direction: TrafficDirection
  readonly address: string
  readonly port: number
  /** The declared protocol (uppercase); the HTTP/1.1 data path serves HTTP-family ports. */
  readonly protocol: string
  readonly routeTable: RouteTable
  /** How a connection is served, decided from the declared protocols at compile time. */
  readonly serve: ListenerServe
  /** Routes for the connections this listener serves as opaque TCP or TLS passthrough. */
  readonly tcpRoutes: TcpRouteTable
  /** Sniffing gives up and serves the connection as TCP after this long; 0 waits (Istio's default). */
  readonly protocolDetectionTimeoutMs: number
  /** TLS termination (Sidecar ingress `tls`); set exactly when `serve` is `tls-terminate`. */
  readonly tls?: DownstreamTlsModel
  /**
   * The PeerAuthentication mode of an inbound port (compile/peer-authentication.ts); absent on outbound
   * listeners and on ports whose Sidecar ingress `tls` terminates TLS itself.
   */
  readonly mtls?: InboundMtlsModel
  /** The workload's AuthorizationPolicies, on inbound listeners only; absent when none applies. */
  readonly authz?: AuthzPolicySet
  /**
   * Envoy's `bind_to_port: false`: the listener opens no socket; a capture listener hands it the
   * connections whose original destination it matches (`address` is then a service VIP, a CIDR or 0.0.0.0).
   */
  readonly bindToPort?: false
  /** Set on the capture listeners (Istio's virtualOutbound 15001 and virtualInbound 15006). */
  readonly capture?: CaptureListenerModel
}

/**
 * A capture listener: it reads each connection's original destination and hands it to the listener of
 * its direction that matches (Envoy's use_original_dst); what none matches is served by its own routes
 * (the passthrough or blackhole chain).
 */
export interface CaptureListenerModel {
  /** `iptables`: REDIRECT, read with SO_ORIGINAL_DST; `tproxy`: the socket's local address, IP_TRANSPARENT listener. */
  readonly mode: 'iptables' | 'tproxy'
  /**
   * The proxy's own ports (capture, admin, stats, health): a connection whose original destination is one
   * of them is closed, never passed through, so that it cannot loop (Istio's virtualInbound blackhole chain).
   */
  readonly ownPorts: readonly number[]
}

/** Istio's effective mutual TLS mode of an inbound port, with the policy it came from (for config_dump and logs). */
export interface InboundMtlsModel {
  readonly mode: 'STRICT' | 'PERMISSIVE' | 'DISABLE'
  /** `namespace/name` of the PeerAuthentication that decided, or '' for Istio's default (PERMISSIVE). */
  readonly policy: string
}

/**
 * `http`: a declared HTTP-family port, straight to the HTTP/1 codec (no sniffing); `tcp`: opaque bytes,
 * never sniffed (TCP and server-first protocols); `tls`: TLS passthrough routed by the ClientHello's
 * SNI; `detect`: an undeclared port, where the first bytes pick HTTP/1, HTTP/2, TLS or opaque TCP.
 */
export type ListenerServe = 'http' | 'tcp' | 'tls' | 'detect' | 'tls-terminate'

/** One upstream address of a cluster. */
export interface EndpointModel {
  /** IP or DNS name (resolved when connecting). */
  readonly address: string
  readonly port: number
  readonly labels: Readonly<Record<string, string>>
  readonly weight: number
  /** `region/zone/subzone`, or empty when unknown. */
  readonly locality: string
  /**
   * Envoy's priority level (0 is tried first), set from localityLbSetting failover or failoverPriority;
   * levels are numbered without gaps.
   */
  readonly priority: number
  /**
   * The weight of this endpoint's locality within its priority (Envoy's locality load_balancing_weight):
   * the sum of its endpoints' weights, or what localityLbSetting.distribute gives it.
   */
  readonly localityWeight: number
  /**
   * The TLS this endpoint's connections originate (the cluster's DestinationRule `tls`, or auto-mTLS for an
   * endpoint labelled `security.istio.io/tlsMode: istio`, as Envoy's transport_socket_matches pick); absent: plain text.
   */
  readonly tls?: UpstreamTlsModel
}

/**
 * Envoy's cluster discovery types beside static endpoints: DNS-resolved ones, and ORIGINAL_DST, whose
 * host is each connection's original destination (Istio's PassthroughCluster, DestinationRule PASSTHROUGH).
 */
export type ClusterDiscovery = 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST'

/** A named set of endpoints with its policies: `outbound|port|subset|fqdn` or `inbound|port||`. */
export interface ClusterModel {
  readonly name: string
  readonly direction: TrafficDirection
  /** The service's fully qualified host (empty for inbound clusters). */
  readonly host: string
  readonly port: number
  readonly subset: string
  readonly protocol: string
  readonly endpoints: readonly EndpointModel[]
  /**
   * How endpoint addresses that are DNS names become hosts at run time, as Istio's convertResolution
   * maps ServiceEntry resolution (pilot/pkg/networking/core/cluster.go): DNS → Envoy's STRICT_DNS (a
   * host per resolved address), DNS_ROUND_ROBIN → LOGICAL_DNS (one host per name, connecting to its
   * first resolved address). Absent: every address is an IP (Envoy's STATIC/EDS).
   */
  readonly discovery?: ClusterDiscovery
  readonly connectTimeoutMs: number
  /**
   * Envoy's upstream_bind_config: the source address of upstream connections, by the destination's family
   * (Istio's InboundPassthroughCluster binds 127.0.0.6 and ::6 so that the capture rules let it pass).
   */
  readonly upstreamBind?: { readonly ipv4: string; readonly ipv6: string }
  /**
   * Set on the clusters of a MESH_EXTERNAL ServiceEntry: no peer metadata goes there (Istio marks such
   * clusters `istio.external` in their metadata, pilot/pkg/networking/core/cluster_builder.go).
   */
  readonly meshExternal?: true
  /** The DestinationRule traffic policy for this port and subset, merged as Istio merges it. */
  readonly policy: ClusterPolicy
}

/** Envoy's "no limit" for circuit-breaker thresholds (2^32-1), which Istio sets by default. */
export const UNLIMITED = 4294967295

/** A cluster's traffic policy: load balancing, connection pool limits, outlier detection, retry budget. */
export interface ClusterPolicy {
  readonly loadBalancer: LoadBalancerModel
  readonly connectionPool: ConnectionPoolModel
  /** Absent: no outlier detection (no endpoint is ever ejected). */
  readonly outlierDetection: OutlierDetectionModel | undefined
  /** Absent: concurrent retries are limited by `connectionPool.maxRetries` alone. */
  readonly retryBudget: RetryBudgetModel | undefined
  /** Slow start for new endpoints (DestinationRule warmup); absent: none. */
  readonly warmup: WarmupModel | undefined
}

/** Envoy's slow_start_config: a new endpoint's weight ramps up over `durationMs`. */
export interface WarmupModel {
  readonly durationMs: number
  /** The weight factor never goes below this fraction (0..1). */
  readonly minWeightFactor: number
  readonly aggression: number
}

/** Where the consistent-hash load balancers take their key from (DestinationRule consistentHash). */
export type HashKeyModel =
  | { readonly kind: 'header'; readonly name: string }
  | {
      readonly kind: 'cookie'
      readonly name: string
      readonly path: string
      /** Seconds; a cookie is generated when absent only if a ttl is set (0 makes a session cookie). */
      readonly ttlSeconds: number | undefined
      readonly attributes: readonly { readonly name: string; readonly value: string }[]
    }
  | { readonly kind: 'sourceIp' }
  | { readonly kind: 'queryParameter'; readonly name: string }
  /** consistentHash without a key: Envoy then picks a random endpoint. */
  | { readonly kind: 'none' }

export type LoadBalancerModel =
  | { readonly kind: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' }
  | { readonly kind: 'RING_HASH'; readonly hashKey: HashKeyModel; readonly minimumRingSize: number }
  | { readonly kind: 'MAGLEV'; readonly hashKey: HashKeyModel; readonly tableSize: number }

/** Connection pool settings and Envoy's circuit-breaker thresholds (UNLIMITED when not set). */
export interface ConnectionPoolModel {
  /** Connections per endpoint (undici Pool `connections`). */
  readonly maxConnections: number
  /** Requests waiting for a connection, across the cluster (http1MaxPendingRequests). */
  readonly maxPendingRequests: number
  /** Requests in flight across the cluster (http2MaxRequests, Envoy's max_requests). */
  readonly maxRequests: number
  /** Retries in flight across the cluster. */
  readonly maxRetries: number
  /** 0: unlimited. */
  readonly maxRequestsPerConnection: number
  /** Idle time before a pooled connection closes; undefined: the proxy's default. */
  readonly idleTimeoutMs: number | undefined
  readonly maxConnectionDurationMs: number | undefined
  /** SO_KEEPALIVE idle time before probes; 0 keeps the OS default; undefined: undici's default. */
  readonly tcpKeepaliveTimeMs: number | undefined
  /** h2UpgradePolicy UPGRADE: HTTP/1.1 requests to an HTTP port go upstream as HTTP/2. */
  readonly h2Upgrade: boolean
  /** useClientProtocol: the upstream speaks whatever the downstream spoke. */
  readonly useClientProtocol: boolean
  /** Streams per upstream HTTP/2 connection (maxConcurrentStreams); UNLIMITED: the server's SETTINGS decide. */
  readonly maxConcurrentStreams: number
}

/** Envoy's outlier detection as Istio configures it (consecutive errors; success-rate ejection off). */
export interface OutlierDetectionModel {
  /** 0 disables. */
  readonly consecutive5xxErrors: number
  /** 0 disables. */
  readonly consecutiveGatewayErrors: number
  readonly splitExternalLocalOriginErrors: boolean
  /** Used only when splitExternalLocalOriginErrors is set. */
  readonly consecutiveLocalOriginFailures: number
  readonly intervalMs: number
  readonly baseEjectionTimeMs: number
  /** Envoy's max_ejection_time: 300 s, or the base ejection time if that is longer. */
  readonly maxEjectionTimeMs: number
  readonly maxEjectionPercent: number
  /** Below this share of healthy endpoints the load balancer ignores ejections (Envoy's panic mode). */
  readonly minHealthPercent: number
  /** When not empty, only these status codes count as errors (outlierDetectionHttpErrorCodes). */
  readonly httpErrorCodes: readonly number[]
}

export interface RetryBudgetModel {
  readonly percent: number
  readonly minRetryConcurrency: number
}

export interface Model {
  /** Increases with every successful compile. */
  readonly version: number
  readonly compiledAt: string
  readonly node: NodeIdentity
  readonly listeners: readonly ListenerModel[]
  readonly clusters: ReadonlyMap<string, ClusterModel>
  /** Config files the model was compiled from (watched for reload). */
  readonly files: readonly string[]
  readonly warnings: readonly ConfigMessage[]
  /** The JWT rules the inbound side verifies (RequestAuthentication); undefined: none apply. */
  readonly requestAuthentication: RequestAuthenticationModel | undefined
  /** The AuthorizationPolicies that apply to this workload (inbound traffic); absent when none does. */
  readonly authz: AuthzPolicySet | undefined
  /** What to observe per direction (metrics, access log, tracing): the bootstrap's defaults and the Telemetry resources. */
  readonly telemetry: TelemetryPolicy
  /** The names the DNS proxy answers (ServiceEntry hosts); empty when it does not run. */
  readonly dnsTable: DnsTable
}
