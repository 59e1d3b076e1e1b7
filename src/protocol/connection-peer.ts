// The mTLS peer of a downstream connection, attached to its socket by the listener and read by the HTTP and TCP layers.

import type { PeerIdentity } from './peer-identity.ts'

/** What the mTLS handshake of one connection established, computed once per connection. */
export interface ConnectionPeer {
  /** The peer's SPIFFE identity; undefined when its certificate carries no `spiffe://` URI SAN. */
  readonly identity: PeerIdentity | undefined
  /**
   * This hop's X-Forwarded-Client-Cert element as Envoy writes it inside Istio (APPEND_FORWARD with
   * Subject, URI and DNS): `By=<own SPIFFE>;Hash=<sha256 of the peer certificate>;Subject="…";URI=<peer SPIFFE>`.
   */
  readonly xfcc: string
}

const peerKey = Symbol('outrigger.connectionPeer')

interface MarkedSocket {
  [peerKey]?: ConnectionPeer
}

/** Marks `socket` (the TLS socket of an mTLS connection) with what its handshake established. */
export function setConnectionPeer(socket: object, peer: ConnectionPeer): void {
  ;(socket as MarkedSocket)[peerKey] = peer
}

/**
 * The peer of the connection `socket` belongs to, or undefined for plain text and the app's own TLS.
 * node:http2's session socket is a proxy that forwards property reads to the TLS socket, so it works there too.
 */
export function connectionPeer(socket: object | undefined): ConnectionPeer | undefined {
  return socket === undefined ? undefined : (socket as MarkedSocket)[peerKey]
}

/** Istio's principal, namespace and trust domain from a SPIFFE ID (`spiffe://<td>/ns/<ns>/sa/<sa>`). */
export function peerIdentityOf(spiffeId: string): PeerIdentity | undefined {
  if (!spiffeId.startsWith('spiffe://')) return undefined
  const principal = spiffeId.slice('spiffe://'.length)
  const slash = principal.indexOf('/')
  const trustDomain = slash === -1 ? principal : principal.slice(0, slash)
  const match = /\/ns\/([^/]+)\//.exec(principal)
  return { principal, namespace: match === null ? '' : match[1], trustDomain }
}
