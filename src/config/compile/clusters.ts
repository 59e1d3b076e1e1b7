// Builds the outbound clusters (per service port and DestinationRule subset) and the inbound ones.

import { hostMatches, isExportedTo, toFqdn } from '../hosts.ts'
import type { ClusterModel, EndpointModel, NodeIdentity } from '../model.ts'
import type { DestinationRuleResource, Resource } from '../resource.ts'
import { outboundClusterName } from './http-routes.ts'
import type { Service, ServicePort } from './service-registry.ts'
import { clusterPolicy, connectTimeoutMs, mergeTrafficPolicy } from './traffic-policy.ts'

export { defaultClusterPolicy, defaultConnectTimeoutMs } from './traffic-policy.ts'

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
    const topPolicy = dr?.spec.trafficPolicy
    for (const port of service.ports) {
      if (!include(port)) continue
      const base = {
        direction: 'outbound' as const,
        host: service.fqdn,
        port: port.number,
        protocol: port.protocol,
      }
      const merged = mergeTrafficPolicy(topPolicy, undefined, port.number)
      clusters.push({
        ...base,
        name: outboundClusterName(port.number, '', service.fqdn),
        subset: '',
        endpoints: endpointsFor(service, port),
        connectTimeoutMs: connectTimeoutMs(merged),
        policy: clusterPolicy(merged),
      })
      for (const subset of dr?.spec.subsets ?? []) {
        const mergedSubset = mergeTrafficPolicy(topPolicy, subset.trafficPolicy, port.number)
        clusters.push({
          ...base,
          name: outboundClusterName(port.number, subset.name, service.fqdn),
          subset: subset.name,
          endpoints: endpointsFor(service, port, subset.labels ?? {}),
          connectTimeoutMs: connectTimeoutMs(mergedSubset),
          policy: clusterPolicy(mergedSubset),
        })
      }
    }
  }
  return clusters
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`
}
