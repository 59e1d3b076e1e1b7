// Under traffic capture: Istio's virtualOutbound (15001) and virtualInbound (15006) listeners, and the PassthroughCluster, BlackHoleCluster and InboundPassthroughCluster they fall back to.

import type { AuthzPolicySet } from '../../authz/authz-policies.ts'
import type { Bootstrap } from '../../bootstrap/schema.ts'
import { HeaderEdits } from '../../route/header-edits.ts'
import { Route } from '../../route/route.ts'
import { RouteTable } from '../../route/route-table.ts'
import { TcpRoute, TcpRouteTable } from '../../route/tcp-route-table.ts'
import type { ClusterModel, InboundMtlsModel, ListenerModel } from '../model.ts'
import { defaultClusterPolicy, defaultConnectTimeoutMs } from './clusters.ts'
import type { ListenerTransport } from './tcp-routes.ts'

/** Istio's cluster names (pilot/pkg/util/protocol and networking/util): util.PassthroughCluster and friends. */
export const PASSTHROUGH_CLUSTER = 'PassthroughCluster'
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster'
export const INBOUND_PASSTHROUGH_CLUSTER = 'InboundPassthroughCluster'

/** Istio's InboundPassthroughBindIpv4 / Ipv6: the source of connections the inbound passthrough makes to the app. */
export const INBOUND_PASSTHROUGH_BIND = { ipv4: '127.0.0.6', ipv6: '::6' } as const

export type OutboundTrafficMode = 'ALLOW_ANY' | 'REGISTRY_ONLY'

/**
 * The clusters the capture listeners fall back to, as pilot's cluster builder makes them
 * (buildBlackHoleCluster, buildDefaultPassthroughCluster, buildInboundPassthroughCluster): ORIGINAL_DST
 * clusters whose host is the connection's original destination, and a cluster with no endpoint.
 */
export function captureClusters(): ClusterModel[] {
  const base = {
    host: '',
    port: 0,
    subset: '',
    protocol: '',
    connectTimeoutMs: defaultConnectTimeoutMs,
    policy: defaultClusterPolicy,
  }
  return [
    {
      ...base,
      name: PASSTHROUGH_CLUSTER,
      direction: 'outbound',
      endpoints: [],
      discovery: 'ORIGINAL_DST',
    },
    { ...base, name: BLACKHOLE_CLUSTER, direction: 'outbound', endpoints: [] },
    {
      ...base,
      name: INBOUND_PASSTHROUGH_CLUSTER,
      direction: 'inbound',
      endpoints: [],
      discovery: 'ORIGINAL_DST',
      upstreamBind: INBOUND_PASSTHROUGH_BIND,
    },
  ]
}

/** The cluster an unknown outbound destination goes to: PassthroughCluster (ALLOW_ANY) or BlackHoleCluster. */
export function unknownDestinationCluster(mode: OutboundTrafficMode): string {
  return mode === 'ALLOW_ANY' ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER
}

/** A route that forwards everything to one cluster, with no timeout and no retries (Istio's passthrough routes). */
function forwardAll(name: string, clusterName: string): Route {
  return new Route({
    name,
    action: {
      kind: 'forward',
      destinations: [
        { clusterName, weight: 1, requestHeaders: HeaderEdits.none, responseHeaders: HeaderEdits.none },
      ],
      totalWeight: 1,
    },
    requestHeaders: HeaderEdits.none,
    responseHeaders: HeaderEdits.none,
    timeoutMs: 0,
  })
}

/** One TCP route without a match (any destination, any SNI) to `clusterName`. */
function anyConnection(name: string, clusterName: string): TcpRoute {
  return new TcpRoute({
    name,
    sniHosts: [],
    destinationSubnets: [],
    destinations: [{ clusterName, weight: 1 }],
  })
}

/**
 * Istio's `allow_any` virtual host (ALLOW_ANY: a Host no service has goes to PassthroughCluster), put
 * last so that every service's names win; REGISTRY_ONLY's block_all is compile.ts's withBlockAll.
 */
export function withAllowAny(table: RouteTable): RouteTable {
  return new RouteTable(table.name, [
    ...table.virtualHosts,
    { name: 'allow_any', domains: ['*'], port: 0, routes: [forwardAll('allow_any', PASSTHROUGH_CLUSTER)] },
  ])
}

/**
 * A captured port's TCP and TLS connections that no service route takes go where Istio's listener
 * falls through to: the passthrough filter chain (ALLOW_ANY) or the blackhole (REGISTRY_ONLY). The
 * fallback routes match anything and come last, so any service route wins over them.
 */
export function withUnknownDestinations(
  transport: ListenerTransport,
  mode: OutboundTrafficMode,
): ListenerTransport {
  if (transport.serve === 'http') return transport
  const cluster = unknownDestinationCluster(mode)
  const routes = transport.tcpRoutes
  const tls =
    transport.serve === 'tls' ? [...routes.tlsRoutes, anyConnection(cluster, cluster)] : routes.tlsRoutes
  const tcp =
    transport.serve === 'tls' ? routes.tcpRoutes : [...routes.tcpRoutes, anyConnection(cluster, cluster)]
  return { serve: transport.serve, tcpRoutes: new TcpRouteTable(routes.name, tls, tcp) }
}

/** The proxy's own ports: capture, admin, stats, health. Traffic addressed to them is never passed through. */
export function ownPorts(bootstrap: Bootstrap): number[] {
  const l = bootstrap.listeners
  return [l.outbound.port, l.inbound.port, l.admin.port, l.stats.port, l.health.port]
}

/**
 * Istio's virtualOutbound listener (pilot listener_builder.go buildVirtualOutboundListener): bound on the
 * outbound capture port with use_original_dst; its own filter chain is the passthrough (TCP proxy to
 * PassthroughCluster) under ALLOW_ANY, or the BlackHoleCluster under REGISTRY_ONLY.
 */
export function virtualOutboundListener(bootstrap: Bootstrap, mode: OutboundTrafficMode): ListenerModel {
  const { address = '0.0.0.0', port } = bootstrap.listeners.outbound
  const cluster = unknownDestinationCluster(mode)
  return {
    name: 'virtualOutbound',
    direction: 'outbound',
    address,
    port,
    protocol: 'TCP',
    routeTable: new RouteTable('virtualOutbound', []),
    serve: 'tcp',
    tcpRoutes: new TcpRouteTable('virtualOutbound', [], [anyConnection(cluster, cluster)]),
    protocolDetectionTimeoutMs: 0,
    // Istio's TPROXY mode intercepts inbound traffic only: outbound stays a NAT REDIRECT (tools/istio-iptables).
    capture: { mode: 'iptables', ownPorts: ownPorts(bootstrap) },
  }
}

/**
 * Istio's virtualInbound listener (listener_builder.go buildInboundListeners, the inbound passthrough
 * filter chains): a port no inbound listener serves is sniffed, passes the workload's mTLS mode,
 * authorization and authentication like any inbound port, and goes to InboundPassthroughCluster, which
 * connects to the original destination from 127.0.0.6.
 */
export function virtualInboundListener(
  bootstrap: Bootstrap,
  mtls: InboundMtlsModel,
  authz: AuthzPolicySet | undefined,
  routeTable: RouteTable,
  protocolDetectionTimeoutMs: number,
): ListenerModel {
  const { address = '0.0.0.0', port } = bootstrap.listeners.inbound
  return {
    name: 'virtualInbound',
    direction: 'inbound',
    address,
    port,
    protocol: '',
    routeTable,
    serve: 'detect',
    tcpRoutes: new TcpRouteTable(
      INBOUND_PASSTHROUGH_CLUSTER,
      [],
      [anyConnection('inbound passthrough', INBOUND_PASSTHROUGH_CLUSTER)],
    ),
    protocolDetectionTimeoutMs,
    mtls,
    ...(authz === undefined ? {} : { authz }),
    capture: { mode: captureMode(bootstrap), ownPorts: ownPorts(bootstrap) },
  }
}

function captureMode(bootstrap: Bootstrap): 'iptables' | 'tproxy' {
  return bootstrap.capture === 'tproxy' ? 'tproxy' : 'iptables'
}
