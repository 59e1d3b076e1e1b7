// Decides how each listener serves connections (HTTP, TCP, TLS passthrough, sniffing) and compiles tcp[] / tls[] routes.

import { TcpRoute, TcpRouteTable, type WeightedCluster } from '../../route/tcp-route-table.ts'
import { hostAliases, hostMatches, toFqdn } from '../hosts.ts'
import type { TcpRoute as VsTcpRoute, TlsRoute as VsTlsRoute } from '../istio/virtual-service.ts'
import type { ListenerServe, NodeIdentity } from '../model.ts'
import type { VirtualServiceResource } from '../resource.ts'
import { outboundClusterName } from './http-routes.ts'
import type { Service, ServicePort } from './service-registry.ts'

/**
 * Ports Istio never sniffs when their protocol is undeclared (SMTP, DNS, MySQL, MongoDB): their
 * servers speak first, so detection would wait for bytes that never come. They are served as TCP.
 */
export const serverFirstPorts: ReadonlySet<number> = new Set([25, 53, 3306, 27017])

const httpFamily = new Set(['HTTP', 'HTTP2', 'GRPC', 'GRPC-WEB', 'HTTP_PROXY'])

/** How a port with a declared protocol is served; undefined for an undeclared one (or UDP). */
function declaredServe(protocol: string): ListenerServe | undefined {
  if (protocol === '' || protocol === 'UDP') return undefined
  if (httpFamily.has(protocol)) return 'http'
  if (protocol === 'TLS' || protocol === 'HTTPS') return 'tls'
  // TCP, and the protocols Istio proxies as TCP: MONGO, MYSQL, REDIS.
  return 'tcp'
}

/** What compile.ts puts on a listener besides its HTTP route table. */
export interface ListenerTransport {
  readonly serve: ListenerServe
  readonly tcpRoutes: TcpRouteTable
}

export interface TcpCompileEnv {
  readonly node: NodeIdentity
  readonly services: ReadonlyMap<string, Service>
  /** VirtualServices that apply to this proxy (exported here, gateways include `mesh`). */
  readonly virtualServices: readonly VirtualServiceResource[]
  /** Reports a compile warning at the listener's place in the Sidecar. */
  readonly warn: (message: string) => void
}

/**
 * An ingress listener: HTTP-family ports go to the HTTP codec; every other declared protocol (TLS
 * included: the application terminates it) and the server-first ports are forwarded as opaque TCP;
 * an undeclared port is sniffed. Whatever is not HTTP goes to the inbound cluster.
 */
export function inboundTransport(protocol: string, port: number, clusterName: string): ListenerTransport {
  const declared = declaredServe(protocol)
  const serve: ListenerServe =
    declared === 'http' ? 'http' : declared !== undefined || serverFirstPorts.has(port) ? 'tcp' : 'detect'
  if (serve === 'http') return { serve, tcpRoutes: TcpRouteTable.empty }
  const route = new TcpRoute({
    name: 'default',
    sniHosts: [],
    destinationSubnets: [],
    destinations: [{ clusterName, weight: 1 }],
  })
  return { serve, tcpRoutes: new TcpRouteTable(clusterName, [], [route]) }
}

interface Candidate {
  readonly service: Service
  /** The service's port numbered as the listener. */
  readonly port: ServicePort
}

/**
 * An egress listener on `listenerPort`: the services it can see that have a port with that number are
 * what its TCP and TLS connections reach (without capture, the listener port is all a connection tells
 * about its destination). An undeclared listener protocol is taken from those service ports.
 */
export function outboundTransport(
  listenerProtocol: string,
  listenerPort: number,
  visible: readonly Service[],
  env: TcpCompileEnv,
): ListenerTransport {
  const candidates: Candidate[] = []
  for (const service of visible) {
    if (service.fqdn.startsWith('*')) continue
    const port = service.ports.find((p) => p.number === listenerPort && p.protocol !== 'UDP')
    if (port !== undefined) candidates.push({ service, port })
  }
  const serve = declaredServe(listenerProtocol) ?? candidateServe(candidates, listenerPort)
  if (serve === 'http') return { serve, tcpRoutes: TcpRouteTable.empty }
  // A sniffed port sends TLS-declared services their TLS (by SNI), and other non-HTTP ones their TCP.
  const opaque =
    serve === 'detect'
      ? candidates.filter((c) => !httpFamily.has(c.port.protocol) && !isTls(c.port))
      : candidates
  const tlsServices = serve === 'detect' ? candidates.filter((c) => isTls(c.port)) : candidates
  const builder = new L4RouteBuilder(listenerPort, env)
  const tls = serve === 'tcp' ? [] : builder.tlsRoutes(tlsServices)
  const tcp = serve === 'tls' ? [] : builder.tcpRoutes(opaque)
  return { serve, tcpRoutes: new TcpRouteTable(String(listenerPort), tls, tcp) }
}

function isTls(port: ServicePort): boolean {
  return port.protocol === 'TLS' || port.protocol === 'HTTPS'
}

/**
 * An undeclared egress port takes its services' protocol when they all declare the same kind;
 * otherwise (undeclared, or a mix) it is sniffed, except on a server-first port, which is TCP.
 */
function candidateServe(candidates: readonly Candidate[], port: number): ListenerServe {
  const kinds = new Set(candidates.map((c) => declaredServe(c.port.protocol)))
  const [only] = kinds
  if (kinds.size === 1 && only !== undefined) return only
  return serverFirstPorts.has(port) ? 'tcp' : 'detect'
}

type L4Match = VsTcpRoute['match'][number] | VsTlsRoute['match'][number]

/** Builds the TCP and TLS routes of one egress listener port, as Istio builds its filter chains. */
class L4RouteBuilder {
  readonly #port: number
  readonly #env: TcpCompileEnv

  constructor(port: number, env: TcpCompileEnv) {
    this.#port = port
    this.#env = env
  }

  /** VirtualServices whose hosts cover the service, in load order. */
  #virtualServicesFor(service: Service): VirtualServiceResource[] {
    return this.#env.virtualServices.filter((vs) =>
      vs.spec.hosts.some((h) => hostMatches(toFqdn(h, vs.namespace), service.fqdn)),
    )
  }

  /** Istio's matchTLS / matchTCP: the parts of a match this proxy can decide at compile time. */
  #applies(m: L4Match): boolean {
    const node = this.#env.node
    if (m.port !== undefined && m.port !== this.#port) return false
    for (const [key, value] of Object.entries(m.sourceLabels ?? {}))
      if (node.labels[key] !== value) return false
    if (m.sourceNamespace !== undefined && m.sourceNamespace !== node.namespace) return false
    const gateways = m.gateways ?? []
    return gateways.length === 0 || gateways.includes('mesh')
  }

  #destinations(vs: VirtualServiceResource, route: VsTcpRoute['route']): WeightedCluster[] {
    const allUnweighted = route.every((r) => r.weight === undefined)
    const out: WeightedCluster[] = []
    for (const r of route) {
      const weight = route.length === 1 || allUnweighted ? 1 : (r.weight ?? 0)
      if (weight <= 0) continue
      const fqdn = toFqdn(r.destination.host, vs.namespace)
      let port = r.destination.port?.number
      if (port === undefined) {
        // Istio: the port may be left out when the destination has one port; else it is the listener's.
        const ports = this.#env.services.get(fqdn)?.ports ?? []
        port = ports.length === 1 ? ports[0].number : this.#port
      }
      out.push({ clusterName: outboundClusterName(port, r.destination.subset ?? '', fqdn), weight })
    }
    return out
  }

  /** The cluster a service's connections go to when no route names one (Istio's single-destination chain). */
  #defaultDestination(c: Candidate): WeightedCluster[] {
    const port = c.service.ports.length === 1 ? c.service.ports[0].number : this.#port
    return [{ clusterName: outboundClusterName(port, '', c.service.fqdn), weight: 1 }]
  }

  /**
   * Istio's buildSidecarOutboundTLSFilterChainOpts per service: the tls[] matches that apply (the first
   * of equal SNI and subset predicates wins); a service no tls[] route covers gets a route on its own
   * names, which its clients send as SNI.
   */
  tlsRoutes(services: readonly Candidate[]): TcpRoute[] {
    const routes: TcpRoute[] = []
    const seen = new Set<string>()
    for (const c of services) {
      let matched = false
      for (const vs of this.#virtualServicesFor(c.service)) {
        vs.spec.tls.forEach((tls, i) => {
          if (tls.route.length === 0) return
          for (const m of tls.match) {
            if (!this.#applies(m)) continue
            matched = true
            const sniHosts = m.sniHosts.map((h) => h.toLowerCase())
            const key = `${sniHosts.join(',')}|${m.destinationSubnets.join(',')}`
            if (seen.has(key)) continue
            seen.add(key)
            routes.push(
              new TcpRoute({
                name: `${vs.namespace}/${vs.name} tls[${i}]`,
                sniHosts,
                destinationSubnets: m.destinationSubnets,
                destinations: this.#destinations(vs, tls.route),
              }),
            )
          }
        })
      }
      if (matched) continue
      const sniHosts = hostAliases(c.service.fqdn, this.#env.node.namespace)
      const key = `${sniHosts.join(',')}|`
      if (seen.has(key)) continue
      seen.add(key)
      routes.push(
        new TcpRoute({
          name: 'default',
          sniHosts,
          destinationSubnets: [],
          destinations: this.#defaultDestination(c),
        }),
      )
    }
    return routes
  }

  /**
   * Istio's buildSidecarOutboundTCPFilterChainOpts per service, in order: tcp[] routes whose matches
   * name destination subnets, up to the first route that takes any destination; the service's default
   * route when none does. A later service behind a catch-all is unreachable, and is warned about.
   */
  tcpRoutes(services: readonly Candidate[]): TcpRoute[] {
    const routes: TcpRoute[] = []
    let catchAll: Service | undefined
    for (const c of services) {
      if (catchAll !== undefined) {
        this.#env.warn(
          `port ${this.#port}: TCP connections all go to ${catchAll.fqdn}; ${c.service.fqdn} shares the port and ` +
            'cannot be told apart from it without traffic capture (give it another port or a destinationSubnets match)',
        )
      }
      this.#serviceTcpRoutes(c, routes)
      catchAll ??= c.service
    }
    return routes
  }

  /** Appends one service's routes, which always end with one that takes any destination. */
  #serviceTcpRoutes(c: Candidate, routes: TcpRoute[]): void {
    for (const vs of this.#virtualServicesFor(c.service)) {
      for (const [i, tcp] of vs.spec.tcp.entries()) {
        if (tcp.route.length === 0) continue
        const name = `${vs.namespace}/${vs.name} tcp[${i}]`
        const destinations = this.#destinations(vs, tcp.route)
        if (tcp.match.length === 0) {
          routes.push(new TcpRoute({ name, sniHosts: [], destinationSubnets: [], destinations }))
          return
        }
        const subnets: string[] = []
        for (const m of tcp.match) {
          if (!this.#applies(m)) continue
          if (m.destinationSubnets.length === 0) {
            routes.push(new TcpRoute({ name, sniHosts: [], destinationSubnets: [], destinations }))
            return
          }
          subnets.push(...m.destinationSubnets)
        }
        if (subnets.length > 0) {
          routes.push(new TcpRoute({ name, sniHosts: [], destinationSubnets: subnets, destinations }))
        }
      }
    }
    routes.push(
      new TcpRoute({
        name: 'default',
        sniHosts: [],
        destinationSubnets: [],
        destinations: this.#defaultDestination(c),
      }),
    )
  }
}
