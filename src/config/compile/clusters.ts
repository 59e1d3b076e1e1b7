// Builds the outbound clusters (per service port and DestinationRule subset) and the inbound ones.

import { hostMatches, isExportedTo, toFqdn } from '../hosts.ts'
import type { ClusterModel, EndpointModel, NodeIdentity } from '../model.ts'
import type { DestinationRuleResource, Resource } from '../resource.ts'
import { outboundClusterName } from './http-routes.ts'
import type { Service, ServicePort } from './service-registry.ts'

/** Istio's default connect timeout (meshConfig.connectTimeout). */
export const defaultConnectTimeoutMs = 10_000

/** The DestinationRule for a host: an exact host beats the longest matching wildcard. */
export function destinationRuleFor(
  fqdn: string,
  rules: readonly DestinationRuleResource[],
): DestinationRuleResource | undefined {
  let best: DestinationRuleResource | undefined
  let bestHost = ''
  for (const dr of rules) {
    const host = toFqdn(dr.spec.host, dr.namespace)
    if (!hostMatches(host, fqdn)) continue
    if (host === fqdn) return dr
    if (host.length > bestHost.length) {
      best = dr
      bestHost = host
    }
  }
  return best
}

export function visibleDestinationRules(
  resources: readonly Resource[],
  node: NodeIdentity,
): DestinationRuleResource[] {
  const rules: DestinationRuleResource[] = []
  for (const r of resources) {
    if (r.kind === 'DestinationRule' && isExportedTo(r.spec.exportTo, r.namespace, node.namespace))
      rules.push(r)
  }
  return rules
}

function endpointsFor(
  service: Service,
  port: ServicePort,
  labels?: Readonly<Record<string, string>>,
): EndpointModel[] {
  const out: EndpointModel[] = []
  for (const e of service.endpoints) {
    if (labels !== undefined && !Object.entries(labels).every(([k, v]) => e.labels[k] === v)) continue
    const number = (port.name !== '' ? e.ports[port.name] : undefined) ?? port.targetPort ?? port.number
    out.push({ address: e.address, port: number, labels: e.labels, weight: e.weight })
  }
  return out
}

export function outboundClusters(
  services: ReadonlyMap<string, Service>,
  rules: readonly DestinationRuleResource[],
  include: (port: ServicePort) => boolean,
): ClusterModel[] {
  const clusters: ClusterModel[] = []
  for (const service of services.values()) {
    if (service.fqdn.startsWith('*')) continue
    const dr = destinationRuleFor(service.fqdn, rules)
    for (const port of service.ports) {
      if (!include(port)) continue
      const base = {
        direction: 'outbound' as const,
        host: service.fqdn,
        port: port.number,
        protocol: port.protocol,
        connectTimeoutMs: defaultConnectTimeoutMs,
      }
      clusters.push({
        ...base,
        name: outboundClusterName(port.number, '', service.fqdn),
        subset: '',
        endpoints: endpointsFor(service, port),
      })
      for (const subset of dr?.spec.subsets ?? []) {
        clusters.push({
          ...base,
          name: outboundClusterName(port.number, subset.name, service.fqdn),
          subset: subset.name,
          endpoints: endpointsFor(service, port, subset.labels ?? {}),
        })
      }
    }
  }
  return clusters
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`
}
