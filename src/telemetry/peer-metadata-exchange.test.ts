// This node's exchange values are computed once, and peers' headers decode through a cache that is bounded and keyed by id and value.

import { describe, expect, it } from 'vitest'
import { decodeExchangePayload, decodePeerStruct } from './peer-metadata.ts'
import {
  EXCHANGE_HEADER_BYTES,
  EXCHANGE_MAGIC,
  localPeer,
  MAX_PEER_METADATA_BYTES,
  PeerMetadataExchange,
} from './peer-metadata-exchange.ts'

const node = {
  workload: 'reviews-v2',
  namespace: 'bookinfo',
  serviceAccount: 'reviews',
  cluster: 'Kubernetes',
  trustDomain: 'cluster.local',
  labels: { app: 'reviews', version: 'v2' },
}

function peerOf(workload: string): PeerMetadataExchange {
  return new PeerMetadataExchange(localPeer({ ...node, workload }, 'host', '10.0.0.1'))
}

describe('PeerMetadataExchange', () => {
  it("names this node as Istio names a sidecar: the pod's host name, else the workload in front", () => {
    expect(localPeer(node, 'reviews-v2-7d9f-x2x', '10.1.2.3')).toMatchObject({
      id: 'sidecar~10.1.2.3~reviews-v2-7d9f-x2x.bookinfo~bookinfo.svc.cluster.local',
      instanceName: 'reviews-v2-7d9f-x2x',
      meshId: 'cluster.local',
    })
    expect(localPeer(node, 'laptop', '10.1.2.3').instanceName).toBe('reviews-v2-laptop')
  })

  it('encodes its header value and TCP frame (magic, big-endian length, payload) once, from the node', () => {
    const exchange = new PeerMetadataExchange(localPeer(node, 'h', '10.0.0.1'))
    const own = decodePeerStruct(Buffer.from(exchange.headerValue, 'base64'))
    expect(own).toMatchObject({
      workloadName: 'reviews-v2',
      namespace: 'bookinfo',
      app: 'reviews',
      version: 'v2',
    })
    const frame = exchange.frame
    expect(frame.readUInt32BE(0)).toBe(EXCHANGE_MAGIC)
    expect(frame.readUInt32BE(4)).toBe(frame.length - EXCHANGE_HEADER_BYTES)
    expect(decodeExchangePayload(frame.subarray(EXCHANGE_HEADER_BYTES))).toEqual(own)
  })

  it('decodes a peer once per id and value: a hit returns the same object, a reused id with new metadata decodes again', () => {
    const exchange = peerOf('me')
    const a = peerOf('productpage')
    const b = peerOf('ratings')
    const first = exchange.fromHeaders(a.id, a.headerValue)
    expect(first?.workloadName).toBe('productpage')
    expect(exchange.fromHeaders(a.id, a.headerValue)).toBe(first)
    const borrowed = exchange.fromHeaders(a.id, b.headerValue)
    expect(borrowed?.workloadName).toBe('ratings')
    expect(exchange.cachedPeers).toBe(1)
  })

  it('keeps at most its bound of peers, dropping the oldest quarter as istio-proxy does', () => {
    const exchange = new PeerMetadataExchange(localPeer(node, 'h', '10.0.0.1'), 8)
    const value = peerOf('p').headerValue
    for (let i = 0; i < 50; i++) exchange.fromHeaders(`peer-${i}`, value)
    expect(exchange.cachedPeers).toBeLessThanOrEqual(8)
    expect(exchange.cachedPeers).toBeGreaterThan(0)
  })

  it('ignores an oversized value and a value that is not base64 protobuf, without caching a huge id', () => {
    const exchange = peerOf('me')
    expect(exchange.fromHeaders('x', 'A'.repeat(MAX_PEER_METADATA_BYTES + 1))).toBeUndefined()
    expect(exchange.fromHeaders('y', '!!!not-base64-protobuf!!!')).toBeUndefined()
    expect(exchange.fromHeaders('z'.repeat(10_000), peerOf('p').headerValue)?.workloadName).toBe('p')
    expect(exchange.cachedPeers).toBe(1)
  })
})
