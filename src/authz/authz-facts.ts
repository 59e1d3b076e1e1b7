// What authorization reads of a request or a connection: Istio's attributes (source, destination, request, auth).

import type { PeerIdentity, RequestPrincipal } from '../protocol/peer-identity.ts'

/**
 * The attributes of one request (HTTP) or connection (TCP) an AuthorizationPolicy can name. Made only
 * when a policy applies; the HTTP-only ones are never read for a TCP connection (its rules do not name them).
 */
export interface AuthzFacts {
  /** `:method`. */
  readonly method: string
  /** The normalized path, without the query (Envoy's path matcher ignores the query). */
  readonly path: string
  /** `:authority` / Host as sent ('' when absent). */
  readonly host: string
  /** The destination port: the port the connection arrived on (Istio's `destination.port`). */
  readonly port: number
  /** The downstream connection's peer address (Envoy's direct_remote_ip, Istio's `source.ip`). */
  readonly sourceIp: string
  /** Envoy's remote_ip (Istio's `remote.ip`): on a sidecar without trusted proxies, the same as sourceIp. */
  readonly remoteIp: string
  /** The address the connection arrived at (`destination.ip`). */
  readonly destinationIp: string
  /** The TLS SNI of the connection (`connection.sni`), '' without TLS. */
  readonly sni: string
  readonly peer: PeerIdentity | undefined
  readonly requestPrincipal: RequestPrincipal | undefined
  /** A request header by lowercase name, values joined by ','; undefined when absent. */
  header(name: string): string | undefined
}

/** Node reports IPv4 peers of a dual-stack socket as `::ffff:a.b.c.d`; policies name them as `a.b.c.d`. */
export function plainIp(address: string | undefined): string {
  if (address === undefined) return ''
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
}
