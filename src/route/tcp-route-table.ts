// Compiled routes for opaque TCP and TLS passthrough connections: SNI and destination subnet pick weighted clusters.

import { BlockList, isIP } from 'node:net'

/** One destination of a TCP or TLS route: a cluster and its share of connections. */
export interface WeightedCluster {
  readonly clusterName: string
  readonly weight: number
}

export interface TcpRouteSpec {
  /** Where the route came from, for config_dump and logs (e.g. `default/db tcp[0]`, or `default`). */
  readonly name: string
  /** Server names (lowercase; exact, `*.suffix` or `*`) the ClientHello's SNI must match; empty: any. */
  readonly sniHosts: readonly string[]
  /** Destination addresses or CIDR blocks the connection must be addressed to; empty: any. */
  readonly destinationSubnets: readonly string[]
  /** Destinations with a weight above 0, in order. */
  readonly destinations: readonly WeightedCluster[]
}

/** What route matching reads from a connection. */
export interface ConnectionFacts {
  /** The ClientHello's server name, when the connection is TLS and sent one. */
  readonly sni: string | undefined
  /** The address the client connected to (the original destination once traffic is captured). */
  readonly destinationAddress: string | undefined
}

interface Subnet {
  readonly block: BlockList
  readonly family: 'ipv4' | 'ipv6'
  readonly prefix: number
}

/** `a.b.c.d/xx`, `a.b.c.d`, `x::y/xx`; compiled into a BlockList with its prefix length. */
function compileSubnet(text: string): Subnet {
  const [address, prefixText] = text.split('/')
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4'
  const prefix = prefixText === undefined ? (family === 'ipv6' ? 128 : 32) : Number(prefixText)
  const block = new BlockList()
  block.addSubnet(address, prefix, family)
  return { block, family, prefix }
}

/** A client on a dual-stack socket shows IPv4 peers as `::ffff:a.b.c.d`. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

export class TcpRoute implements TcpRouteSpec {
  readonly name: string
  readonly sniHosts: readonly string[]
  readonly destinationSubnets: readonly string[]
  readonly destinations: readonly WeightedCluster[]
  readonly totalWeight: number
  readonly #subnets: readonly Subnet[]
  readonly #exactSni: ReadonlySet<string>
  /** `*.example.com` as `.example.com`; `*` as the empty suffix. */
  readonly #wildcardSni: readonly string[]

  constructor(spec: TcpRouteSpec) {
    this.name = spec.name
    this.sniHosts = spec.sniHosts
    this.destinationSubnets = spec.destinationSubnets
    this.destinations = spec.destinations
    this.totalWeight = spec.destinations.reduce((sum, d) => sum + d.weight, 0)
    this.#subnets = spec.destinationSubnets.map(compileSubnet)
    this.#exactSni = new Set(spec.sniHosts.filter((h) => !h.startsWith('*')))
    this.#wildcardSni = spec.sniHosts.filter((h) => h.startsWith('*')).map((h) => h.slice(1))
  }

  /**
   * How specifically the destination address matches: the longest matching prefix, -1 for a route
   * without subnets (matches any address), undefined when it does not match.
   */
  destinationScore(address: string | undefined): number | undefined {
    if (this.#subnets.length === 0) return -1
    if (address === undefined) return undefined
    const plain = plainAddress(address)
    const family = isIP(plain) === 6 ? 'ipv6' : 'ipv4'
    let best: number | undefined
    for (const s of this.#subnets) {
      if (s.family === family && s.block.check(plain, family) && (best === undefined || s.prefix > best)) {
        best = s.prefix
      }
    }
    return best
  }

  /**
   * How specifically the server name matches, as Envoy's filter chains match server names: an exact
   * name beats the longest wildcard suffix; 0 for a route without SNI hosts; undefined: no match.
   */
  sniScore(sni: string | undefined): number | undefined {
    if (this.sniHosts.length === 0) return 0
    if (sni === undefined) return undefined
    if (this.#exactSni.has(sni)) return 100_000
    let best: number | undefined
    for (const suffix of this.#wildcardSni) {
      const matches = suffix === '' || (sni.endsWith(suffix) && sni.length > suffix.length)
      if (matches && (best === undefined || suffix.length + 1 > best)) best = suffix.length + 1
    }
    return best
  }

  toJSON(): TcpRouteSpec {
    const { name, sniHosts, destinationSubnets, destinations } = this
    return { name, sniHosts, destinationSubnets, destinations }
  }

  /** A destination by weight (uniformly random, as Envoy's weighted clusters). */
  pick(): WeightedCluster | undefined {
    const list = this.destinations
    if (list.length <= 1) return list[0]
    let ticket = Math.random() * this.totalWeight
    for (const d of list) {
      ticket -= d.weight
      if (ticket < 0) return d
    }
    return list[list.length - 1]
  }
}

/** The best route of `routes`: the most specific destination subnet, then SNI; the first one on a tie. */
function bestRoute(
  routes: readonly TcpRoute[],
  facts: ConnectionFacts,
  bySni: boolean,
): TcpRoute | undefined {
  let best: TcpRoute | undefined
  let bestDestination = Number.NEGATIVE_INFINITY
  let bestSni = Number.NEGATIVE_INFINITY
  for (const route of routes) {
    const destination = route.destinationScore(facts.destinationAddress)
    if (destination === undefined) continue
    const sni = bySni ? route.sniScore(facts.sni) : 0
    if (sni === undefined) continue
    if (destination > bestDestination || (destination === bestDestination && sni > bestSni)) {
      best = route
      bestDestination = destination
      bestSni = sni
    }
  }
  return best
}

export class TcpRouteTable {
  static readonly empty = new TcpRouteTable('', [], [])
  readonly name: string
  /** Routes for TLS connections, chosen by SNI (VirtualService tls[], or a service's own names). */
  readonly tlsRoutes: readonly TcpRoute[]
  /** Routes for opaque TCP (VirtualService tcp[], or the service's default route). */
  readonly tcpRoutes: readonly TcpRoute[]

  constructor(name: string, tlsRoutes: readonly TcpRoute[], tcpRoutes: readonly TcpRoute[]) {
    this.name = name
    this.tlsRoutes = tlsRoutes
    this.tcpRoutes = tcpRoutes
  }

  toJSON(): { name: string; tls: readonly TcpRoute[]; tcp: readonly TcpRoute[] } {
    return { name: this.name, tls: this.tlsRoutes, tcp: this.tcpRoutes }
  }

  get isEmpty(): boolean {
    return this.tlsRoutes.length === 0 && this.tcpRoutes.length === 0
  }

  /** The route for a TLS connection (by SNI); undefined when none matches (Envoy closes it, NR). */
  matchTls(facts: ConnectionFacts): TcpRoute | undefined {
    return bestRoute(this.tlsRoutes, facts, true)
  }

  /** The route for an opaque TCP connection; undefined when none matches. */
  matchTcp(facts: ConnectionFacts): TcpRoute | undefined {
    return bestRoute(this.tcpRoutes, facts, false)
  }
}
