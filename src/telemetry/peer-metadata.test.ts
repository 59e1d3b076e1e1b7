// The peer metadata wire format: istio-proxy's own header value decodes, and this node's Struct and TCP payload are the bytes Istio's format defines.

import { describe, expect, it } from 'vitest'
import {
  decodeExchangePayload,
  decodePeerStruct,
  encodeExchangePayload,
  encodePeerStruct,
  type LocalPeer,
  STRUCT_TYPE_URL,
} from './peer-metadata.ts'
import { localWorkloadMetadata } from './workload-metadata.ts'

/**
 * `SampleIstioHeader` of istio/proxy source/extensions/filters/http/peer_metadata/filter_test.cc: an
 * `x-envoy-peer-metadata` value as an istio-proxy sent it (base64 without padding, the full node metadata
 * of the older format: productpage-v1 in namespace default).
 */
const istioProxySample =
  'ChIKBWlzdGlvEgkaB3NpZGVjYXIKDgoIU1RTX1BPUlQSAhoAChEKB01FU0hfSUQSBhoEbWVzaAocChZTVEFDS0RSSVZFUl9U' +
  'T0tFTl9GSUxFEgIaAAowCihTVEFDS0RSSVZFUl9MT0dHSU5HX0VYUE9SVF9JTlRFUlZBTF9TRUNTEgQaAjIwCjYKDElOU1RB' +
  'TkNFX0lQUxImGiQxMC41Mi4wLjM0LGZlODA6OmEwNzU6MTFmZjpmZTVlOmYxY2QKFAoDYXBwEg0aC3Byb2R1Y3RwYWdlCisK' +
  'G1NFQ1VSRV9TVEFDS0RSSVZFUl9FTkRQT0lOVBIMGgpsb2NhbGhvc3Q6Cl0KGmt1YmVybmV0ZXMuaW8vbGltaXQtcmFuZ2Vy' +
  'Ej8aPUxpbWl0UmFuZ2VyIHBsdWdpbiBzZXQ6IGNwdSByZXF1ZXN0IGZvciBjb250YWluZXIgcHJvZHVjdHBhZ2UKIQoNV09S' +
  'S0xPQURfTkFNRRIQGg5wcm9kdWN0cGFnZS12MQofChFJTlRFUkNFUFRJT05fTU9ERRIKGghSRURJUkVDVAoeCgpDTFVTVEVS' +
  'X0lEEhAaDmNsaWVudC1jbHVzdGVyCkkKD0lTVElPX1BST1hZX1NIQRI2GjRpc3Rpby1wcm94eTo0N2U0NTU5YjhlNGYwZDUx' +
  'NmMwZDE3YjIzM2QxMjdhM2RlYjNkN2NlClIKBU9XTkVSEkkaR2t1YmVybmV0ZXM6Ly9hcGlzL2FwcHMvdjEvbmFtZXNwYWNl' +
  'cy9kZWZhdWx0L2RlcGxveW1lbnRzL3Byb2R1Y3RwYWdlLXYxCsEBCgZMQUJFTFMStgEqswEKFAoDYXBwEg0aC3Byb2R1Y3Rw' +
  'YWdlCiEKEXBvZC10ZW1wbGF0ZS1oYXNoEgwaCjg0OTc1YmM3NzgKMwofc2VydmljZS5pc3Rpby5pby9jYW5vbmljYWwtbmFt' +
  'ZRIQGg5wcm9kdWN0cGFnZS12MQoyCiNzZXJ2aWNlLmlzdGlvLmlvL2Nhbm9uaWNhbC1yZXZpc2lvbhILGgl2ZXJzaW9uLTEK' +
  'DwoHdmVyc2lvbhIEGgJ2MQopCgROQU1FEiEaH3Byb2R1Y3RwYWdlLXYxLTg0OTc1YmM3NzgtcHh6MncKLQoIUE9EX05BTUUS' +
  'IRofcHJvZHVjdHBhZ2UtdjEtODQ5NzViYzc3OC1weHoydwoaCg1JU1RJT19WRVJTSU9OEgkaBzEuNS1kZXYKHwoVSU5DTFVE' +
  'RV9JTkJPVU5EX1BPUlRTEgYaBDkwODAKmwEKEVBMQVRGT1JNX01FVEFEQVRBEoUBKoIBCiYKFGdjcF9na2VfY2x1c3Rlcl9u' +
  'YW1lEg4aDHRlc3QtY2x1c3RlcgocCgxnY3BfbG9jYXRpb24SDBoKdXMtZWFzdDQtYgodCgtnY3BfcHJvamVjdBIOGgx0ZXN0' +
  'LXByb2plY3QKGwoSZ2NwX3Byb2plY3RfbnVtYmVyEgUaAzEyMwopCg9TRVJWSUNFX0FDQ09VTlQSFhoUYm9va2luZm8tcHJv' +
  'ZHVjdHBhZ2UKHQoQQ09ORklHX05BTUVTUEFDRRIJGgdkZWZhdWx0Cg8KB3ZlcnNpb24SBBoCdjEKHgoYU1RBQ0tEUklWRVJf' +
  'Uk9PVF9DQV9GSUxFEgIaAAohChFwb2QtdGVtcGxhdGUtaGFzaBIMGgo4NDk3NWJjNzc4Ch8KDkFQUF9DT05UQUlORVJTEg0a' +
  'C3Rlc3QsYm9uemFpChYKCU5BTUVTUEFDRRIJGgdkZWZhdWx0CjMKK1NUQUNLRFJJVkVSX01PTklUT1JJTkdfRVhQT1JUX0lO' +
  'VEVSVkFMX1NFQ1MSBBoCMjA'

/** Protobuf wire bytes written by hand from the encoding spec, to check the encoder without protobufjs. */
function varint(n: number): Buffer {
  const bytes: number[] = []
  for (; n >= 0x80; n >>>= 7) bytes.push((n & 0x7f) | 0x80)
  bytes.push(n)
  return Buffer.from(bytes)
}
/** A length-delimited field (wire type 2). */
function lengthDelimited(fieldNumber: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(fieldNumber << 3) | 2]), varint(body.length), body])
}
const text = (s: string): Buffer => Buffer.from(s, 'utf8')
/** A Struct `fields` map entry (field 1) whose Value is `value`. */
const entry = (key: string, value: Buffer): Buffer =>
  lengthDelimited(1, Buffer.concat([lengthDelimited(1, text(key)), lengthDelimited(2, value)]))
/** Value.string_value (field 3) and Value.struct_value (field 5). */
const stringValue = (s: string): Buffer => lengthDelimited(3, text(s))
const structValue = (...entries: Buffer[]): Buffer => lengthDelimited(5, Buffer.concat(entries))

const local: LocalPeer = {
  id: 'sidecar~10.0.0.7~rv-x.ns~ns.svc.cluster.local',
  instanceName: 'rv-x',
  meshId: 'td',
  metadata: localWorkloadMetadata({
    workload: 'rv',
    namespace: 'ns',
    serviceAccount: 'sa',
    cluster: 'c1',
    labels: { app: 'reviews', version: 'v2' },
  }),
}

describe('peer metadata Struct', () => {
  it("decodes istio-proxy's own header value (filter_test.cc SampleIstioHeader) as its metadata_object.cc reads it", () => {
    expect(decodePeerStruct(Buffer.from(istioProxySample, 'base64'))).toEqual({
      workloadName: 'productpage-v1',
      namespace: 'default',
      canonicalService: 'productpage-v1',
      canonicalRevision: 'version-1',
      app: 'productpage',
      version: 'v1',
      clusterId: 'client-cluster',
      serviceAccount: 'bookinfo-productpage',
    })
  })

  it("encodes this node as istio-proxy's convertWorkloadMetadataToStruct does, keys in deterministic (sorted) order", () => {
    const expected = Buffer.concat([
      entry('CLUSTER_ID', stringValue('c1')),
      entry(
        'LABELS',
        structValue(
          entry('app', stringValue('reviews')),
          entry('service.istio.io/canonical-name', stringValue('reviews')),
          entry('service.istio.io/canonical-revision', stringValue('v2')),
          entry('version', stringValue('v2')),
        ),
      ),
      entry('MESH_ID', stringValue('td')),
      entry('NAME', stringValue('rv-x')),
      entry('NAMESPACE', stringValue('ns')),
      entry('OWNER', stringValue('kubernetes://apis/apps/v1/namespaces/ns/deployments/rv')),
      entry('SERVICE_ACCOUNT', stringValue('sa')),
      entry('WORKLOAD_NAME', stringValue('rv')),
    ])
    expect(Buffer.from(encodePeerStruct(local)).toString('hex')).toBe(expected.toString('hex'))
  })

  it('round-trips: what this node sends decodes to its own workload metadata', () => {
    expect(decodePeerStruct(encodePeerStruct(local))).toEqual(local.metadata)
  })

  it('leaves out empty labels (an unlabelled workload has no app or version)', () => {
    const metadata = localWorkloadMetadata({
      workload: 'rv',
      namespace: 'ns',
      serviceAccount: 'sa',
      cluster: 'c1',
      labels: {},
    })
    const decoded = decodePeerStruct(encodePeerStruct({ ...local, metadata }))
    expect(decoded).toEqual({
      ...metadata,
      app: '',
      version: '',
      canonicalService: 'rv',
      canonicalRevision: 'latest',
    })
  })

  it('gives undefined for bytes that are not a Struct, and reads only own keys (`__proto__` is no field)', () => {
    expect(decodePeerStruct(Buffer.from([0x0a, 0xff, 0x01]))).toBeUndefined()
    expect(decodePeerStruct(Buffer.from('not protobuf at all'))).toBeUndefined()
    const sneaky = Buffer.concat([
      entry('__proto__', structValue(entry('NAMESPACE', stringValue('evil')))),
      entry('WORKLOAD_NAME', stringValue('w')),
    ])
    expect(decodePeerStruct(sneaky)).toMatchObject({ namespace: '', workloadName: 'w' })
    expect(({} as Record<string, unknown>).NAMESPACE).toBeUndefined()
  })
})

describe('TCP exchange payload', () => {
  it('is an Any of type Struct holding x-envoy-peer-metadata and x-envoy-peer-metadata-id (metadata_exchange.cc writeNodeMetadata)', () => {
    const payload = Buffer.from(encodeExchangePayload(local))
    const node = Buffer.from(encodePeerStruct(local))
    const field = lengthDelimited
    const wrapper = Buffer.concat([
      field(1, Buffer.concat([field(1, text('x-envoy-peer-metadata')), field(2, field(5, node))])),
      field(
        1,
        Buffer.concat([field(1, text('x-envoy-peer-metadata-id')), field(2, field(3, text(local.id)))]),
      ),
    ])
    const expected = Buffer.concat([field(1, text(STRUCT_TYPE_URL)), field(2, wrapper)])
    expect(payload.toString('hex')).toBe(expected.toString('hex'))
    expect(decodeExchangePayload(payload)).toEqual(local.metadata)
  })

  it('reads a payload without the id, and refuses another type or garbage', () => {
    const inner = lengthDelimited(
      1,
      Buffer.concat([
        lengthDelimited(1, text('x-envoy-peer-metadata')),
        lengthDelimited(2, structValue(entry('NAMESPACE', stringValue('n')))),
      ]),
    )
    const any = (typeUrl: string): Buffer =>
      Buffer.concat([lengthDelimited(1, text(typeUrl)), lengthDelimited(2, inner)])
    expect(decodeExchangePayload(any(STRUCT_TYPE_URL))).toMatchObject({ namespace: 'n', workloadName: '' })
    expect(decodeExchangePayload(any('type.googleapis.com/google.protobuf.Value'))).toBeUndefined()
    expect(decodeExchangePayload(Buffer.from([0xff, 0xff, 0xff]))).toBeUndefined()
  })
})
