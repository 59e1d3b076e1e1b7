// The immutable Model the data path reads: listeners, route tables and clusters compiled from config.

import type { RouteTable } from '../route/route-table.ts'
import type { ConfigMessage } from './messages.ts'

/** Who this proxy serves, from the bootstrap's `node`. */
export interface NodeIdentity {
  readonly workload: string
  readonly namespace: string
  readonly serviceAccount: string
  readonly labels: Readonly<Record<string, string>>
  readonly cluster: string
  readonly trustDomain: string
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
}

/** One upstream address of a cluster. */
export interface EndpointModel {
  /** IP or DNS name (resolved when connecting). */
  readonly address: string
  readonly port: number
  readonly labels: Readonly<Record<string, string>>
  readonly weight: number
}

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
  readonly connectTimeoutMs: number
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
}
