// What the TCP proxy reads of the listener it serves; the runtime implements it (src/listener/listener-runtime.ts).

import type { ListenerModel, Model } from '../config/model.ts'
import type { PeerMetadataExchange } from '../telemetry/peer-metadata-exchange.ts'
import type { TrafficObservers } from '../telemetry/traffic-observer.ts'
import type { ClusterManager } from '../upstream/cluster-manager.ts'
import type { TcpStatsTable } from './tcp-stats.ts'

export interface TcpListener {
  /** This listener's part of the current model. */
  readonly model: ListenerModel
  /** The whole current model; a connection keeps the one it was routed with (TcpContext.model). */
  readonly proxyModel: Model
  readonly clusters: ClusterManager
  /** The proxy's TCP connection counters (read by /clusters). */
  readonly tcpStats: TcpStatsTable
  /** Telemetry told of every proxied connection's opening and end; the proxy's one list. */
  readonly observers: TrafficObservers
  /** This proxy's side of Istio's peer metadata exchange (TCP frames after ALPN istio-peer-exchange). */
  readonly peerMetadata: PeerMetadataExchange
}
