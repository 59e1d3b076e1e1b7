// Builds the outbound clusters (per service port and DestinationRule subset) and the inbound ones.

import { HostIndex } from '../host-index.ts'
import { isExportedTo, toFqdn } from '../hosts.ts'
import type { ClusterDiscovery, ClusterModel, EndpointModel, NodeIdentity } from '../model.ts'
import type { DestinationRuleResource, Resource } from '../resource.ts'
import { outboundClusterName } from './http-routes.ts'
import { applyLocalityLb, type EndpointDraft } from './locality-lb.ts'
import type { Service, ServicePort } from './service-registry.ts'
import {
  clusterPolicy,
  connectTimeoutMs,
  type MergedTrafficPolicy,
  mergeTrafficPolicy,
} from './traffic-policy.ts'

export { defaultClusterPolicy, defaultConnectTimeoutMs } from './traffic-policy.ts'

/** DestinationRules by host: an exact host beats the longest matching wildcard; the first loaded wins. */
export function indexDestinationRules(
  rules: readonly DestinationRuleResource[],
): HostIndex<DestinationRuleResource> {
  const index = new HostIndex<DestinationRuleResource>()
  for (const dr of rules) index.add(toFqdn(dr.spec.host, dr.namespace), dr)
  return index
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

/** The service's endpoints for one port (and subset), with the priorities and weights of locality balancing. */
function endpointsFor(
  service: Service,
  port: ServicePort,
  policy: MergedTrafficPolicy,
  node: NodeIdentity,
  labels?: Readonly<Record<string, string>>,
): EndpointModel[] {
  const drafts: EndpointDraft[] = []
  for (const e of service.endpoints) {
    if (labels !== undefined && !Object.entries(labels).every(([k, v]) => e.labels[k] === v)) continue
    const number = (port.name !== '' ? e.ports[port.name] : undefined) ?? port.targetPort ?? port.number
    drafts.push({
      address: e.address,
      port: number,
      labels: e.labels,
      weight: e.weight,
      locality: e.locality,
    })
  }
  const setting = policy.loadBalancer?.localityLbSetting
  return applyLocalityLb(drafts, setting, policy.outlierDetection !== undefined, node)
}

export function outboundClusters(
  services: ReadonlyMap<string, Service>,
  rules: readonly DestinationRuleResource[],
  include: (port: ServicePort) => boolean,
  node: NodeIdentity,
): ClusterModel[] {
  const clusters: ClusterModel[] = []
  const byHost = indexDestinationRules(rules)
  for (const service of services.values()) {
    if (service.fqdn.startsWith('*')) continue
    const dr = byHost.lookup(service.fqdn)
    const topPolicy = dr?.spec.trafficPolicy
    for (const port of service.ports) {
      if (!include(port)) continue
      const base = {
        direction: 'outbound' as const,
        host: service.fqdn,
        port: port.number,
        protocol: port.protocol,
        ...discoveryOf(service.resolution),
      }
      const merged = mergeTrafficPolicy(topPolicy, undefined, port.number)
      clusters.push({
        ...base,
        name: outboundClusterName(port.number, '', service.fqdn),
        subset: '',
        endpoints: endpointsFor(service, port, merged, node),
        connectTimeoutMs: connectTimeoutMs(merged),
        policy: clusterPolicy(merged),
      })
      for (const subset of dr?.spec.subsets ?? []) {
        const mergedSubset = mergeTrafficPolicy(topPolicy, subset.trafficPolicy, port.number)
        clusters.push({
          ...base,
          name: outboundClusterName(port.number, subset.name, service.fqdn),
          subset: subset.name,
          endpoints: endpointsFor(service, port, mergedSubset, node, subset.labels ?? {}),
          connectTimeoutMs: connectTimeoutMs(mergedSubset),
          policy: clusterPolicy(mergedSubset),
        })
      }
    }
  }
  return clusters
}

/** Istio's convertResolution (pilot/pkg/networking/core/cluster.go): DNS → STRICT_DNS, DNS_ROUND_ROBIN → LOGICAL_DNS. */
function discoveryOf(resolution: string): { discovery?: ClusterDiscovery } {
  if (resolution === 'DNS') return { discovery: 'STRICT_DNS' }
  if (resolution === 'DNS_ROUND_ROBIN') return { discovery: 'LOGICAL_DNS' }
  return {}
}

/** A cluster's only endpoint (inbound clusters): no locality, priority 0. */
export function staticEndpoint(address: string, port: number): EndpointModel {
  return { address, port, labels: {}, weight: 1, locality: '', priority: 0, localityWeight: 1 }
}

export function inboundClusterName(port: number): string {
  return `inbound|${port}||`
}
