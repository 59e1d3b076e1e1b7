// Istio's peer metadata on the wire: a workload's node metadata as a google.protobuf.Struct, as HTTP header values and as the TCP exchange's payload.

import protobuf from 'protobufjs'
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

/** google/protobuf/struct.proto and any.proto, as protobufjs ships them. */
const wellKnown = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            ...innerTypes('google/protobuf/struct.proto'),
            ...innerTypes('google/protobuf/any.proto'),
          },
        },
      },
    },
  },
})
const StructType = wellKnown.lookupType('google.protobuf.Struct')
const AnyType = wellKnown.lookupType('google.protobuf.Any')

/** The Any type URL of a Struct, as the TCP metadata exchange packs its payload (metadata_exchange.h StructTypeUrl). */
export const STRUCT_TYPE_URL = 'type.googleapis.com/google.protobuf.Struct'

function innerTypes(file: string): Record<string, protobuf.AnyNestedObject> {
  const json = protobuf.common.get(file) as {
    nested: { google: { nested: { protobuf: protobuf.INamespace } } }
  }
  return json.nested.google.nested.protobuf.nested ?? {}
}

/** A decoded google.protobuf.Value (one of its kinds is set) and Struct, as protobufjs gives them. */
interface ValueMessage {
  readonly stringValue?: string
  readonly structValue?: StructMessage
}
interface StructMessage {
  readonly fields?: Readonly<Record<string, ValueMessage>>
}
interface AnyMessage {
  readonly type_url?: string
  readonly value?: Uint8Array
}

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
  const m = local.metadata
  const labels: Record<string, ValueMessage> = {}
  if (m.app !== '') labels[label.app] = { stringValue: m.app }
  if (m.canonicalService !== '') labels[label.canonicalName] = { stringValue: m.canonicalService }
  if (m.canonicalRevision !== '') labels[label.canonicalRevision] = { stringValue: m.canonicalRevision }
  if (m.version !== '') labels[label.version] = { stringValue: m.version }
  const owner =
    m.workloadName === ''
      ? ''
      : `kubernetes://apis/apps/v1/namespaces/${m.namespace}/deployments/${m.workloadName}`
  const entries: [string, ValueMessage][] = [
    [field.clusterId, { stringValue: m.clusterId }],
    [field.labels, { structValue: { fields: labels } }],
    [field.meshId, { stringValue: local.meshId }],
    [field.name, { stringValue: local.instanceName }],
    [field.namespace, { stringValue: m.namespace }],
    [field.owner, { stringValue: owner }],
    [field.serviceAccount, { stringValue: m.serviceAccount }],
    [field.workloadName, { stringValue: m.workloadName }],
  ]
  const fields: Record<string, ValueMessage> = {}
  for (const [key, value] of entries) if (value.stringValue !== '') fields[key] = value
  return StructType.encode(StructType.fromObject({ fields })).finish()
}

/**
 * The workload a peer's Struct describes, read as istio-proxy reads it (convertStructToWorkloadMetadata;
 * SERVICE_ACCOUNT too, which older proxies send); undefined when the bytes are not a Struct.
 */
export function decodePeerStruct(bytes: Uint8Array): WorkloadMetadata | undefined {
  let struct: StructMessage
  try {
    struct = StructType.decode(bytes) as StructMessage
  } catch {
    return undefined
  }
  return workloadOf(struct)
}

function workloadOf(struct: StructMessage): WorkloadMetadata {
  const fields = struct.fields ?? {}
  const labels = own(fields, field.labels)?.structValue?.fields ?? {}
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

/** A field of a decoded map, own properties only (a peer's key named `__proto__` reads as nothing). */
function own(fields: Readonly<Record<string, ValueMessage>>, key: string): ValueMessage | undefined {
  return Object.hasOwn(fields, key) ? fields[key] : undefined
}

function stringOf(fields: Readonly<Record<string, ValueMessage>>, key: string): string {
  return own(fields, key)?.stringValue ?? ''
}

/**
 * The TCP exchange's payload (istio/proxy source/extensions/filters/network/metadata_exchange
 * writeNodeMetadata): an Any of type Struct, holding `x-envoy-peer-metadata` (the node's Struct) and
 * `x-envoy-peer-metadata-id` (its id).
 */
export function encodeExchangePayload(local: LocalPeer): Uint8Array {
  const node = StructType.decode(encodePeerStruct(local)) as StructMessage
  const wrapper = StructType.fromObject({
    fields: {
      [PEER_METADATA_HEADER]: { structValue: node },
      [PEER_METADATA_ID_HEADER]: { stringValue: local.id },
    },
  })
  const value = StructType.encode(wrapper).finish()
  return AnyType.encode(AnyType.fromObject({ type_url: STRUCT_TYPE_URL, value })).finish()
}

/** The workload in a TCP exchange payload; undefined when it is not an Any of a Struct with `x-envoy-peer-metadata`. */
export function decodeExchangePayload(bytes: Uint8Array): WorkloadMetadata | undefined {
  try {
    const any = AnyType.decode(bytes) as AnyMessage
    if (any.type_url !== STRUCT_TYPE_URL || any.value === undefined) return undefined
    const wrapper = StructType.decode(any.value) as StructMessage
    const node = own(wrapper.fields ?? {}, PEER_METADATA_HEADER)?.structValue
    return node === undefined ? undefined : workloadOf(node)
  } catch {
    return undefined
  }
}
