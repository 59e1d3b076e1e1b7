// This proxy's side of Istio's peer metadata exchange: its own metadata encoded once, and the peers' decoded through a bounded cache.

import { hostname, networkInterfaces } from 'node:os'
import {
  decodeExchangePayload,
  decodePeerStruct,
  encodeExchangePayload,
  encodePeerStruct,
  type LocalPeer,
} from './peer-metadata.ts'
import { localWorkloadMetadata, type NodeDescription, type WorkloadMetadata } from './workload-metadata.ts'

/**
 * The TCP exchange's frame header (istio/proxy metadata_exchange_initial_header.h): a 4-byte magic and the
 * payload's length, both big-endian, before the payload.
 */
export const EXCHANGE_MAGIC = 0x3d230467
export const EXCHANGE_HEADER_BYTES = 8

/**
 * Longest peer payload accepted: a TCP frame's payload, or an `x-envoy-peer-metadata` value (base64
 * text). istio-proxy sends a few hundred bytes (older ones, the whole node metadata: under 2 KiB); Envoy
 * bounds only the header block (60 KiB). Longer ones are ignored, and never buffered beyond this.
 */
export const MAX_PEER_METADATA_BYTES = 16 * 1024

/** Ids longer than this are not cached (the id is only a cache key; Istio's are under 200 characters). */
const MAX_CACHED_ID_LENGTH = 512

/** istio-proxy's MXMethod keeps up to 500 decoded peers per worker and drops the oldest quarter when full. */
const DEFAULT_CACHE_SIZE = 500

/** The node in the bootstrap (NodeIdentity fits). */
export interface LocalNode extends NodeDescription {
  readonly trustDomain: string
}

interface CachedPeer {
  /** The header value it was decoded from: a peer that reuses an id with other metadata is decoded again. */
  readonly value: string
  readonly metadata: WorkloadMetadata | undefined
}

/**
 * One per proxy (the node does not change on reload). Decoding is cached by the peer's id as
 * istio-proxy's is; unlike istio-proxy a hit must also carry the same value, so a reused id cannot
 * pin stale or borrowed labels. The cache is bounded; a peer that sends a new id each time costs a decode.
 */
export class PeerMetadataExchange {
  /** `x-envoy-peer-metadata-id`: this node's id. */
  readonly id: string
  /** `x-envoy-peer-metadata`: base64 of this node's Struct. */
  readonly headerValue: string
  /** The TCP exchange frame this node writes: header and Any payload. */
  readonly frame: Buffer
  readonly #cache = new Map<string, CachedPeer>()
  readonly #cacheSize: number

  constructor(local: LocalPeer, cacheSize = DEFAULT_CACHE_SIZE) {
    this.id = local.id
    this.headerValue = Buffer.from(encodePeerStruct(local)).toString('base64')
    const payload = encodeExchangePayload(local)
    const frame = Buffer.allocUnsafe(EXCHANGE_HEADER_BYTES + payload.length)
    frame.writeUInt32BE(EXCHANGE_MAGIC, 0)
    frame.writeUInt32BE(payload.length, 4)
    frame.set(payload, EXCHANGE_HEADER_BYTES)
    this.frame = frame
    this.#cacheSize = cacheSize
  }

  /** The exchange of the bootstrap's node, named as Istio names a sidecar (see `localPeer`). */
  static forNode(node: LocalNode): PeerMetadataExchange {
    return new PeerMetadataExchange(localPeer(node, hostname(), firstAddress()))
  }

  /** The peer in `x-envoy-peer-metadata` (`id` from `x-envoy-peer-metadata-id`); undefined when it does not decode. */
  fromHeaders(id: string | undefined, value: string): WorkloadMetadata | undefined {
    if (value.length > MAX_PEER_METADATA_BYTES) return undefined
    const cacheable = id !== undefined && id !== '' && id.length <= MAX_CACHED_ID_LENGTH
    if (cacheable) {
      const cached = this.#cache.get(id)
      if (cached !== undefined && cached.value === value) return cached.metadata
    }
    const metadata = decodePeerStruct(Buffer.from(value, 'base64'))
    if (cacheable) this.#remember(id, { value, metadata })
    return metadata
  }

  /** The peer in a TCP exchange payload (not cached: one per connection, already read off the wire). */
  fromExchangePayload(payload: Uint8Array): WorkloadMetadata | undefined {
    return decodeExchangePayload(payload)
  }

  /** Peers cached now (for tests). */
  get cachedPeers(): number {
    return this.#cache.size
  }

  #remember(id: string, peer: CachedPeer): void {
    const cache = this.#cache
    cache.delete(id)
    if (cache.size >= this.#cacheSize) {
      // Map order is insertion order: the first quarter is the oldest, as istio-proxy evicts.
      let drop = Math.max(1, this.#cacheSize >> 2)
      for (const key of cache.keys()) {
        cache.delete(key)
        if (--drop === 0) break
      }
    }
    cache.set(id, peer)
  }
}

/**
 * This node as it introduces itself. `instance` is the pod name in Kubernetes (the host name); outside it,
 * where several sidecars may share a host, the workload name is put in front so that each has its own
 * id. The id has Istio's shape `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`.
 */
export function localPeer(node: LocalNode, host: string, address: string): LocalPeer {
  const instanceName = host.startsWith(`${node.workload}-`) ? host : `${node.workload}-${host}`
  return {
    id: `sidecar~${address}~${instanceName}.${node.namespace}~${node.namespace}.svc.cluster.local`,
    instanceName,
    metadata: localWorkloadMetadata(node),
    meshId: node.trustDomain,
  }
}

/** The first non-internal IPv4 address of this host, else loopback. */
function firstAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const entry of list ?? []) if (entry.family === 'IPv4' && !entry.internal) return entry.address
  }
  return '127.0.0.1'
}
