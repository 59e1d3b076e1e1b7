// Istio's peer metadata on the wire: a workload's node metadata as a google.protobuf.Struct, as HTTP header values and as the TCP exchange's payload.

import {
  decodeAny,
  decodeStruct,
  type EncodableValue,
  encodeAny,
  encodeStruct,
  type StructFields,
} from './protobuf-struct.ts'
import type { WorkloadMetadata } from './workload-metadata.ts'

/**
 * The headers of istio-proxy's peer_metadata HTTP filter (istio/proxy
 * source/extensions/filters/http/peer_metadata/filter.h): the base64 of the serialized Struct, and the
 * sender's node id, by which a receiver caches what it decoded.
 */
export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata'
export const PEER_METADATA_ID_HEADER = 'x-envoy-peer-metadata-id'

/** The Struct keys istio-proxy reads and writes (istio/proxy extensions/common/metadata_object.h). */
const field = {
  name: 'NAME',
  namespace: 'NAMESPACE',
  clusterId: 'CLUSTER_ID',
  owner: 'OWNER',
  workloadName: 'WORKLOAD_NAME',
  labels: 'LABELS',
  serviceAccount: 'SERVICE_ACCOUNT',
  meshId: 'MESH_ID',
} as const

/** The labels istio-proxy reads from LABELS (metadata_object.h CanonicalNameLabel…AppVersionLabel). */
const label = {
  canonicalName: 'service.istio.io/canonical-name',
  canonicalRevision: 'service.istio.io/canonical-revision',
  app: 'app',
  version: 'version',
} as const

/** The Any type URL of a Struct, as the TCP metadata exchange packs its payload (metadata_exchange.h StructTypeUrl). */
export const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct'

/** Who this proxy is, as it tells its peers. */
export interface LocalPeer {
  /** The node id (`x-envoy-peer-metadata-id`): Istio's `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`. */
  readonly id: string
  /** The instance (Kubernetes: the pod) name, Istio's NAME. */
  readonly instanceName: string
  readonly metadata: WorkloadMetadata
  /** Istio's MESH_ID (by default the trust domain). */
  readonly meshId: string
}

/**
 * This node's metadata as a Struct: the fields istio-proxy writes (convertWorkloadMetadataToStruct: NAME,
 * NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, LABELS with the canonical service, revision, app and version, and
 * OWNER), plus SERVICE_ACCOUNT and MESH_ID of the older FlatNode format. Keys in byte order and empty
 * values left out, as Istio's deterministic serialization writes them.
 */
export function encodePeerStruct(local: LocalPeer): Uint8Array {
  return encodeStruct(peerEntries(local))
}

/** This node's Struct entries (see encodePeerStruct). */
function peerEntries(local: LocalPeer): [string, EncodableValue][] {
  const m = local.metadata
  const labels: [string, EncodableValue][] = []
  if (m.app !== '') labels.push([label.app, m.app])
  if (m.canonicalService !== '') labels.push([label.canonicalName, m.canonicalService])
  if (m.canonicalRevision !== '') labels.push([label.canonicalRevision, m.canonicalRevision])
  if (m.version !== '') labels.push([label.version, m.version])
  const owner =
    m.workloadName === ''
      ? ''
      : `kubernetes://apis/apps/v1/namespaces/${m.namespace}/deployments/${m.workloadName}`
  const entries: [string, EncodableValue][] = [
    [field.clusterId, m.clusterId],
    [field.labels, labels],
    [field.meshId, local.meshId],
    [field.name, local.instanceName],
    [field.namespace, m.namespace],
    [field.owner, owner],
    [field.serviceAccount, m.serviceAccount],
    [field.workloadName, m.workloadName],
  ]
  return entries.filter(([, value]) => value !== '')
}

/**
 * The workload a peer's Struct describes, read as istio-proxy reads it (convertStructToWorkloadMetadata;
 * SERVICE_ACCOUNT too, which older proxies send); undefined when the bytes are not a Struct.
 */
export function decodePeerStruct(bytes: Uint8Array): WorkloadMetadata | undefined {
  let fields: StructFields
  try {
    fields = decodeStruct(bytes)
  } catch {
    return undefined
  }
  return workloadOf(fields)
}

const noFields: StructFields = new Map()

function workloadOf(fields: StructFields): WorkloadMetadata {
  const labels = fields.get(field.labels)?.structValue ?? noFields
  return {
    workloadName: stringOf(fields, field.workloadName),
    namespace: stringOf(fields, field.namespace),
    canonicalService: stringOf(labels, label.canonicalName),
    canonicalRevision: stringOf(labels, label.canonicalRevision),
    app: stringOf(labels, label.app),
    version: stringOf(labels, label.version),
    clusterId: stringOf(fields, field.clusterId),
    serviceAccount: stringOf(fields, field.serviceAccount),
  }
}

function stringOf(fields: StructFields, key: string): string {
  return fields.get(key)?.stringValue ?? ''
}

/**
 * The TCP exchange's payload (istio/proxy source/extensions/filters/network/metadata_exchange
 * writeNodeMetadata): an Any of type Struct, holding `x-envoy-peer-metadata` (the node's Struct) and
 * `x-envoy-peer-metadata-id` (its id).
 */
export function encodeExchangePayload(local: LocalPeer): Uint8Array {
  const wrapper = encodeStruct([
    [PEER_METADATA_HEADER, peerEntries(local)],
    [PEER_METADATA_ID_HEADER, local.id],
  ])
  return encodeAny(STRUCT_TYPE_URL, wrapper)
}

/** The workload in a TCP exchange payload; undefined when it is not an Any of a Struct with `x-envoy-peer-metadata`. */
export function decodeExchangePayload(bytes: Uint8Array): WorkloadMetadata | undefined {
  try {
    const any = decodeAny(bytes)
    if (any.typeUrl !== STRUCT_TYPE_URL || any.value === undefined) return undefined
    const node = decodeStruct(any.value).get(PEER_METADATA_HEADER)?.structValue
    return node === undefined ? undefined : workloadOf(node)
  } catch {
    return undefined
  }
}
