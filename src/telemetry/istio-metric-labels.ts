// Istio's standard metric labels: their names in Istio's order, and their values for a finished request or TCP connection as istio/proxy's stats plugin derives them.

import type { RequestRecord } from './request-record.ts'
import type { TcpRecord } from './tcp-record.ts'
import { labelValue, localWorkloadMetadata, type WorkloadMetadata } from './workload-metadata.ts'

/**
 * The peer labels, in the order istio/proxy's stats plugin pushes them (source/extensions/filters/http/
 * istio_stats/istio_stats.cc, populatePeerInfo), after `reporter`.
 */
const peerLabelNames = [
  'source_workload',
  'source_canonical_service',
  'source_canonical_revision',
  'source_workload_namespace',
  'source_principal',
  'source_app',
  'source_version',
  'source_cluster',
  'destination_workload',
  'destination_workload_namespace',
  'destination_principal',
  'destination_app',
  'destination_version',
  'destination_service',
  'destination_canonical_service',
  'destination_canonical_revision',
  'destination_service_name',
  'destination_service_namespace',
  'destination_cluster',
] as const

/** The labels of istio_requests_total and the other HTTP metrics (IstioStatsFilter::log). */
export const requestLabelNames: readonly string[] = Object.freeze([
  'reporter',
  ...peerLabelNames,
  'request_protocol',
  'response_code',
  'grpc_response_status',
  'response_flags',
  'connection_security_policy',
])

/** The labels of the istio_tcp_* metrics: no response code or gRPC status (IstioStatsFilter::reportHelper). */
export const tcpLabelNames: readonly string[] = Object.freeze([
  'reporter',
  ...peerLabelNames,
  'request_protocol',
  'response_flags',
  'connection_security_policy',
])

/** What a node contributes to its own side's labels, resolved once per runtime. */
export interface LocalLabels {
  readonly workload: string
  readonly namespace: string
  readonly canonicalService: string
  readonly canonicalRevision: string
  readonly app: string
  readonly version: string
  readonly cluster: string
  /** This workload's SPIFFE URI SAN (`spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`). */
  readonly principal: string
  readonly trustDomain: string
}

export interface LocalNode {
  readonly workload: string
  readonly namespace: string
  readonly serviceAccount: string
  readonly cluster: string
  readonly trustDomain: string
  readonly labels: Readonly<Record<string, string>>
}

/** The node's label values (`unknown` for an empty one, as labelValue says). */
export function localLabels(node: LocalNode): LocalLabels {
  const m = localWorkloadMetadata(node)
  return {
    workload: labelValue(m.workloadName),
    namespace: labelValue(m.namespace),
    canonicalService: labelValue(m.canonicalService),
    canonicalRevision: labelValue(m.canonicalRevision),
    app: labelValue(m.app),
    version: labelValue(m.version),
    cluster: labelValue(m.clusterId),
    principal: `spiffe://${node.trustDomain}/ns/${node.namespace}/sa/${node.serviceAccount}`,
    trustDomain: node.trustDomain,
  }
}

/**
 * The short name of a service host, as Istio's cluster metadata names it: `reviews` for a Kubernetes
 * host `reviews.default.svc.<domain>`; any other host (a ServiceEntry's) is its own name.
 */
export function serviceShortName(host: string): string {
  const dot = host.indexOf('.')
  if (dot === -1) return host
  const second = host.indexOf('.', dot + 1)
  return second !== -1 && host.startsWith('.svc.', second) ? host.slice(0, dot) : host
}

/** The namespace of a SPIFFE principal (`…/ns/<namespace>/sa/…`), or '' (istio_stats.cc getNamespace). */
function principalNamespace(principal: string): string {
  const at = principal.indexOf('/ns/')
  if (at === -1) return ''
  const start = at + 4
  const end = principal.indexOf('/', start)
  return end === -1 ? principal.slice(start) : principal.slice(start, end)
}

/** The response codes as label values, made once (0 is a request that got no response). */
const statusTexts: readonly string[] = Array.from({ length: 600 }, (_, code) => String(code))

function statusText(code: number): string {
  return code >= 0 && code < 600 ? statusTexts[code] : String(code)
}

/** `-` when no flag was set, else the flags joined with `,` (Envoy's ResponseFlagUtils::toShortString). */
function flagsValue(flags: readonly string[]): string {
  return flags.length === 0 ? '-' : flags.join(',')
}

/** The traffic facts both record kinds share, as label derivation reads them. */
type PeerFacts = Pick<
  RequestRecord | TcpRecord,
  | 'direction'
  | 'peer'
  | 'downstreamPeerMetadata'
  | 'upstreamPeerMetadata'
  | 'upstreamMtls'
  | 'destinationService'
  | 'responseFlags'
>

/**
 * Writes `reporter` and the peer labels into `out[0..19]`; returns the connection_security_policy
 * value. `host` is the request's Host for the inbound fallback. Follows populatePeerInfo: on inbound the
 * source is the peer (its metadata, its mTLS SAN) and the destination this node; on outbound the
 * reverse. The outbound destination principal is the upstream SAN, which Outrigger does not read from
 * the connection: it is built from the upstream's peer metadata and this mesh's trust domain.
 */
function fillPeerLabels(out: string[], r: PeerFacts, local: LocalLabels, host: string): string {
  if (r.direction === 'inbound') {
    const peer = r.downstreamPeerMetadata
    const san = r.peer === undefined ? '' : `spiffe://${r.peer.principal}`
    const namespace = r.peer?.namespace || peer?.namespace
    out[0] = 'destination'
    out[1] = labelValue(peer?.workloadName)
    out[2] = labelValue(peer?.canonicalService)
    out[3] = peer?.canonicalRevision || 'latest'
    out[4] = labelValue(namespace)
    out[5] = labelValue(san)
    out[6] = labelValue(peer?.app)
    out[7] = labelValue(peer?.version)
    out[8] = labelValue(peer?.clusterId)
    out[9] = local.workload
    out[10] = local.namespace
    out[11] = san === '' ? 'unknown' : local.principal
    out[12] = local.app
    out[13] = local.version
    const service = r.destinationService || host
    out[14] = service || local.canonicalService
    out[15] = local.canonicalService
    out[16] = local.canonicalRevision
    out[17] = service === '' ? local.canonicalService : serviceShortName(service)
    out[18] = local.namespace
    out[19] = local.cluster
    return san === '' ? 'none' : 'mutual_tls'
  }
  const peer: WorkloadMetadata | undefined = r.upstreamPeerMetadata
  const mtls = r.upstreamMtls
  const peerSan =
    mtls && peer !== undefined && peer.serviceAccount !== ''
      ? `spiffe://${local.trustDomain}/ns/${peer.namespace}/sa/${peer.serviceAccount}`
      : ''
  const namespace = principalNamespace(peerSan) || peer?.namespace
  const service = r.destinationService || host
  out[0] = 'source'
  out[1] = local.workload
  out[2] = local.canonicalService
  out[3] = local.canonicalRevision
  out[4] = local.namespace
  out[5] = mtls ? local.principal : 'unknown'
  out[6] = local.app
  out[7] = local.version
  out[8] = local.cluster
  out[9] = labelValue(peer?.workloadName)
  out[10] = labelValue(namespace)
  out[11] = labelValue(peerSan)
  out[12] = labelValue(peer?.app)
  out[13] = labelValue(peer?.version)
  out[14] = labelValue(service)
  out[15] = labelValue(peer?.canonicalService)
  out[16] = peer?.canonicalRevision || 'latest'
  out[17] = service === '' ? 'unknown' : serviceShortName(service)
  out[18] = labelValue(namespace)
  out[19] = labelValue(peer?.clusterId)
  // The client side never sets the plugin's mutual_tls_ flag: reporter=source says `unknown`.
  return 'unknown'
}

/** The Host header without its port (the destination_service fallback when no service was routed to). */
function hostOf(authority: string): string {
  if (authority === '' || authority.startsWith('[')) return authority
  const colon = authority.lastIndexOf(':')
  return colon === -1 ? authority : authority.slice(0, colon)
}

/**
 * IstioStatsFilter::log: a gRPC request (content-type application/grpc*) is `grpc`, with the status from
 * the trailers or headers. gRPC rides HTTP/2; an HTTP/1.1 request's headers are not parsed again just to ask.
 */
function isGrpcRequest(r: RequestRecord): boolean {
  return (
    r.grpcStatus !== undefined ||
    (r.http2 && r.header('content-type')?.startsWith('application/grpc') === true)
  )
}

/** Fills `out` (requestLabelNames.length long) with a finished request's label values. */
export function fillRequestLabels(out: string[], r: RequestRecord, local: LocalLabels): void {
  const security = fillPeerLabels(out, r, local, hostOf(r.authority))
  const grpc = r.grpcStatus
  // '' when a gRPC request had no status.
  const isGrpc = isGrpcRequest(r)
  out[20] = isGrpc ? 'grpc' : 'http'
  out[21] = statusText(r.responseStatus)
  out[22] = isGrpc ? (grpc ?? '') : ''
  out[23] = flagsValue(r.responseFlags)
  out[24] = security
}

/** Fills `out` (tcpLabelNames.length long) with a TCP connection's label values. */
export function fillTcpLabels(out: string[], r: TcpRecord, local: LocalLabels): void {
  const security = fillPeerLabels(out, r, local, '')
  out[20] = 'tcp'
  out[21] = flagsValue(r.responseFlags)
  out[22] = security
}

/**
 * Everything fillRequestLabels derives a request's values from (with the node's constant LocalLabels),
 * kept for the last request counted: the next request with the same inputs has the same 25 values, so
 * the steady state (one peer, one service, 200, no flags) compares a dozen inputs instead of deriving
 * and comparing the values. The peer and its metadata compare by identity (the connection and the
 * peer-metadata cache keep the objects; an equal copy only takes the longer way); a request with
 * response flags always takes it. Must name every input fillRequestLabels reads.
 */
export class RequestLabelInputs {
  #known = false
  #direction: RequestRecord['direction'] = 'inbound'
  #peer: RequestRecord['peer'] = undefined
  #downstreamPeerMetadata: WorkloadMetadata | undefined = undefined
  #upstreamPeerMetadata: WorkloadMetadata | undefined = undefined
  #upstreamMtls = false
  #destinationService = ''
  #authority = ''
  #responseStatus = 0
  #grpcStatus: string | undefined = undefined
  #grpc = false

  /** True when `r`'s label values are those of the request remembered last. */
  matches(r: RequestRecord): boolean {
    return (
      this.#known &&
      r.responseStatus === this.#responseStatus &&
      r.responseFlags.length === 0 &&
      r.direction === this.#direction &&
      r.peer === this.#peer &&
      r.downstreamPeerMetadata === this.#downstreamPeerMetadata &&
      r.upstreamPeerMetadata === this.#upstreamPeerMetadata &&
      r.upstreamMtls === this.#upstreamMtls &&
      r.grpcStatus === this.#grpcStatus &&
      r.destinationService === this.#destinationService &&
      // The Host is a value only in place of a service (the destination_service fallback).
      (this.#destinationService !== '' || r.authority === this.#authority) &&
      isGrpcRequest(r) === this.#grpc
    )
  }

  /** Remembers `r`'s inputs (its values were just derived), or forgets them when it had response flags. */
  remember(r: RequestRecord): void {
    this.#known = r.responseFlags.length === 0
    this.#direction = r.direction
    this.#peer = r.peer
    this.#downstreamPeerMetadata = r.downstreamPeerMetadata
    this.#upstreamPeerMetadata = r.upstreamPeerMetadata
    this.#upstreamMtls = r.upstreamMtls
    this.#destinationService = r.destinationService
    this.#authority = r.authority
    this.#responseStatus = r.responseStatus
    this.#grpcStatus = r.grpcStatus
    this.#grpc = isGrpcRequest(r)
  }
}
