import { describe, expect, it } from 'vitest'
import { connectionPeer, peerIdentityOf, setConnectionPeer } from './connection-peer.ts'

describe('peerIdentityOf', () => {
  it("reads Istio's principal, namespace and trust domain from a SPIFFE ID", () => {
    expect(peerIdentityOf('spiffe://cluster.local/ns/foo/sa/bar')).toEqual({
      principal: 'cluster.local/ns/foo/sa/bar',
      namespace: 'foo',
      trustDomain: 'cluster.local',
    })
    expect(peerIdentityOf('spiffe://example.org/workload')).toEqual({
      principal: 'example.org/workload',
      namespace: '',
      trustDomain: 'example.org',
    })
    expect(peerIdentityOf('https://example.org/ns/a/sa/b')).toBeUndefined()
  })

  it('reads the peer a socket was marked with, through a proxy as node:http2 hands out', () => {
    const socket = {}
    expect(connectionPeer(socket)).toBeUndefined()
    const peer = { identity: peerIdentityOf('spiffe://td/ns/a/sa/b'), xfcc: 'Hash=00' }
    setConnectionPeer(socket, peer)
    expect(connectionPeer(new Proxy(socket, {}))).toBe(peer)
  })
})
