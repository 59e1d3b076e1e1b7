// Which HTTP version a cluster speaks to its endpoints, decided as Istio configures Envoy's clusters.

import type { ClusterModel } from '../config/model.ts'

/** `downstream`: the version the client used (Envoy's USE_DOWNSTREAM_PROTOCOL). */
export type UpstreamProtocol = 'http1' | 'http2' | 'downstream'

/**
 * HTTP2 and GRPC ports speak h2c; an undeclared (sniffed) port or `useClientProtocol` follows the client;
 * an outbound HTTP port with `h2UpgradePolicy: UPGRADE` is upgraded; everything else is HTTP/1.1.
 */
export function upstreamProtocol(cluster: ClusterModel): UpstreamProtocol {
  const protocol = cluster.protocol
  if (protocol === 'HTTP2' || protocol === 'GRPC') return 'http2'
  const pool = cluster.policy.connectionPool
  if (protocol === '' || pool.useClientProtocol) return 'downstream'
  if (pool.h2Upgrade && protocol === 'HTTP' && cluster.direction === 'outbound') return 'http2'
  return 'http1'
}
