// Istio's peer metadata exchange over HTTP headers (istio-proxy's peer_metadata filter): tells mesh peers who this workload is and learns who they are.

import type { TrafficDirection } from '../../config/model.ts'
import { PEER_METADATA_HEADER, PEER_METADATA_ID_HEADER } from '../../telemetry/peer-metadata.ts'
import type { PeerMetadataExchange } from '../../telemetry/peer-metadata-exchange.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import type { RequestContext } from '../request-context.ts'

/**
 * As pilot configures istio-proxy's filter (pilot/pkg/networking/core/listener_builder.go appendMxFilter,
 * xdsfilters.SidecarInboundMetadataFilter / SidecarOutboundMetadataFilterSkipHeaders), istio/proxy
 * source/extensions/filters/http/peer_metadata/filter.cc:
 * - inbound: the request's `x-envoy-peer-metadata(-id)` name the downstream workload and are removed before
 *   the app sees them; the response carries this workload's pair back to a peer that sent one.
 * - outbound: the request carries this workload's pair (replacing any the app set), except to a
 *   MESH_EXTERNAL service (Istio's `metadataExchangeHeaders.mode: IN_MESH`); the response's pair names the
 *   upstream workload and is removed before the app sees it.
 * The metadata only labels telemetry: the peer's identity is what mTLS established, never these headers.
 */
export class PeerMetadataFilter implements HttpFilter {
  readonly name = 'peer-metadata'
  readonly #exchange: PeerMetadataExchange
  readonly #inbound: boolean

  constructor(exchange: PeerMetadataExchange, direction: TrafficDirection) {
    this.#exchange = exchange
    this.#inbound = direction === 'inbound'
  }

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const raw = ctx.req.rawHeaders
    let value: string | undefined
    let id: string | undefined
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]
      if (value === undefined && isHeader(name, PEER_METADATA_HEADER)) value = raw[i + 1]
      else if (id === undefined && isHeader(name, PEER_METADATA_ID_HEADER)) id = raw[i + 1]
    }
    if (this.#inbound) {
      if (value !== undefined && value !== '')
        ctx.downstreamPeerMetadata = this.#exchange.fromHeaders(id, value)
      if (value !== undefined || id !== undefined) removePeerHeaders(raw)
      return 'continue'
    }
    if (!toMesh(ctx)) return 'continue'
    if (value !== undefined || id !== undefined) removePeerHeaders(raw)
    raw.push(PEER_METADATA_ID_HEADER, this.#exchange.id, PEER_METADATA_HEADER, this.#exchange.headerValue)
    return 'continue'
  }

  onResponseHeaders(ctx: RequestContext, _status: number, headers: string[]): void {
    if (this.#inbound) {
      // istio-proxy answers with its metadata only to a downstream that sent its own (filter.cc inject).
      if (ctx.downstreamPeerMetadata === undefined) return
      removePeerHeaders(headers)
      headers.push(
        PEER_METADATA_ID_HEADER,
        this.#exchange.id,
        PEER_METADATA_HEADER,
        this.#exchange.headerValue,
      )
      return
    }
    let value: string | undefined
    let id: string | undefined
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]
      if (name === PEER_METADATA_HEADER) value ??= headers[i + 1]
      else if (name === PEER_METADATA_ID_HEADER) id ??= headers[i + 1]
    }
    if (value === undefined && id === undefined) return
    if (value !== undefined && value !== '') ctx.upstreamPeerMetadata = this.#exchange.fromHeaders(id, value)
    removePeerHeaders(headers)
  }
}

/**
 * Whether the request goes to a workload of the mesh: some destination of its route is a cluster that is
 * not MESH_EXTERNAL. istio-proxy decides on the one cluster the route resolved to; a route that splits
 * between mesh and external services (rare) gets the headers on both.
 */
function toMesh(ctx: RequestContext): boolean {
  const action = ctx.route?.action
  if (action === undefined || action.kind !== 'forward') return false
  const clusters = ctx.model.clusters
  for (const destination of action.destinations) {
    if (clusters.get(destination.clusterName)?.meshExternal !== true) return true
  }
  return false
}

/** Removes both peer headers from a flat header list in place. */
function removePeerHeaders(headers: string[]): void {
  let w = 0
  for (let r = 0; r < headers.length; r += 2) {
    const name = headers[r]
    if (isHeader(name, PEER_METADATA_HEADER) || isHeader(name, PEER_METADATA_ID_HEADER)) continue
    headers[w] = name
    headers[w + 1] = headers[r + 1]
    w += 2
  }
  headers.length = w
}

/**
 * Whether `name` is the lowercase header name `lower`, in any case. Sidecars send these names in lowercase
 * (HTTP/2 must), so the common match costs one comparison; a name is lowercased only when it could be one
 * in another case (same length, starting with `x`/`X`): toLowerCase allocates.
 */
function isHeader(name: string, lower: string): boolean {
  if (name === lower) return true
  if (name.length !== lower.length) return false
  const first = name.charCodeAt(0)
  return (first === 0x58 || first === 0x78) && name.toLowerCase() === lower
}
