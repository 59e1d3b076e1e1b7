// The two ends of an Istio mTLS pair for scenario tests: a server sidecar in front of loopback apps, and client sidecars reaching it through mesh services.

import * as istio from './istio.ts'
import { istioMutual, meshService, retryingPortClash } from './mesh.ts'
import { freePorts } from './ports.ts'
import { type ProxyProcess, startProxy } from './proxy-process.ts'

/** The ports of a test's sidecars by name (`inHttp`, `outGrpc`, …): each starter picks its own into it. */
export type PortTable = Record<string, number>

/** One ingress port of the server sidecar: the table's name for it, and the loopback app behind it. */
export interface AppInbound {
  /** Its name in the port table. */
  readonly port: string
  readonly appPort: number
  readonly protocol: string
  /** The Sidecar's port name. */
  readonly name: string
}

export interface ServerSidecarOptions {
  readonly ports: PortTable
  readonly inbound: readonly AppInbound[]
  /** The bootstrap `tls` block (filesTls, or a MeshCa's builtInTls). */
  readonly tls: string
  /** Resources after the Sidecar (PeerAuthentication, AuthorizationPolicy…), made once the ports are picked. */
  readonly policies?: () => readonly string[]
  /** Default `{app: reviews}`. */
  readonly labels?: Record<string, string>
  /** Default `reviews`. */
  readonly serviceAccount?: string
}

/** Picks a free port for each of `names` into `ports`. */
async function pickPorts(ports: PortTable, names: readonly string[]): Promise<void> {
  const free = await freePorts(names.length)
  for (const [i, name] of names.entries()) ports[name] = free[i]
}

/** The server sidecar: a Sidecar whose ingress ports forward to the apps on loopback, and its policies. */
export function startServerSidecar(options: ServerSidecarOptions): Promise<ProxyProcess> {
  const { ports, inbound } = options
  return retryingPortClash(async () => {
    await pickPorts(
      ports,
      inbound.map((listener) => listener.port),
    )
    return startProxy({
      labels: options.labels ?? { app: 'reviews' },
      serviceAccount: options.serviceAccount ?? 'reviews',
      resources: {
        'server.yaml': istio.yamlStream(
          istio.sidecar({
            ingress: inbound.map((listener) =>
              istio.loopbackIngress(ports[listener.port], listener.appPort, listener.protocol, listener.name),
            ),
          }),
          ...(options.policies?.() ?? []),
        ),
      },
      extraBootstrap: options.tls,
    })
  })
}

/** One mesh service a client sidecar reaches: its egress port, and the server sidecar's ingress port behind it. */
export interface MeshRoute {
  /** The table's name of the client's egress port for this service. */
  readonly listen: string
  /** The Sidecar's egress port name. */
  readonly name: string
  /** The service (ServiceEntry name and host). */
  readonly host: string
  readonly protocol: string
  /** The table's name of the server sidecar's ingress port, the service's one endpoint. */
  readonly target: string
  /** The endpoint's service account and labels (meshService's default: `reviews`). */
  readonly endpoint?: { serviceAccount?: string; labels?: Record<string, string> }
  /** The ISTIO_MUTUAL DestinationRule's extra traffic policy fields (default none), or false for no DestinationRule. */
  readonly istioMutual?: false | Record<string, unknown>
}

export interface ClientSidecarOptions {
  readonly ports: PortTable
  readonly routes: readonly MeshRoute[]
  /** The bootstrap `tls` block (filesTls, or a MeshCa's builtInTls). */
  readonly tls: string
  /** Default `default`. */
  readonly namespace?: string
  /** Default `{app: sleep}`. */
  readonly labels?: Record<string, string>
  /** Default `sleep`. */
  readonly serviceAccount?: string
  /** The egress listeners' `hosts` (default the Sidecar's `./*`). */
  readonly egressHosts?: readonly string[]
}

/** A client sidecar: an egress port per route, each route's mesh service and its ISTIO_MUTUAL rule. */
export function startClientSidecar(options: ClientSidecarOptions): Promise<ProxyProcess> {
  const { ports, routes, namespace } = options
  return retryingPortClash(async () => {
    await pickPorts(
      ports,
      routes.map((route) => route.listen),
    )
    return startProxy({
      namespace,
      labels: options.labels ?? { app: 'sleep' },
      serviceAccount: options.serviceAccount ?? 'sleep',
      resources: {
        'client.yaml': istio.yamlStream(
          istio.sidecar({
            namespace,
            egress: routes.map((route) => ({
              port: ports[route.listen],
              protocol: route.protocol,
              name: route.name,
              hosts: options.egressHosts,
            })),
          }),
          ...routes.flatMap((route) => [
            meshService(route.host, ports[route.listen], route.protocol, ports[route.target], route.endpoint),
            ...(route.istioMutual === false ? [] : [istioMutual(route.host, route.istioMutual)]),
          ]),
        ),
      },
      extraBootstrap: options.tls,
    })
  })
}
