// Builds the outbound clusters (per service port and DestinationRule subset) and the inbound ones.

import { TLS_MODE_LABEL } from '../../tls/upstream-tls-model.ts'
import { HostIndex } from '../host-index.ts'
import { isExportedTo, toFqdn } from '../hosts.ts'
import type { ConfigMessage } from '../messages.ts'
import type {
  ClusterDiscovery,
  ClusterModel,
  EndpointModel,
  NodeIdentity,
  UpstreamTlsModel,
} from '../model.ts'
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
import { compileUpstreamTls } from './upstream-tls.ts'

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

/** The endpoints with the cluster's TLS: all of them, or (auto-mTLS) those labelled `tlsMode: istio`. */
function withTls(endpoints: EndpointModel[], tls: UpstreamTlsModel | undefined): EndpointModel[] {
  if (tls === undefined) return endpoints
  return endpoints.map((e) => (tls.autoDetected && e.labels[TLS_MODE_LABEL] !== 'istio' ? e : { ...e, tls }))
}

/** What cluster TLS needs from the proxy: whether it has a workload certificate, and where to warn. */
export interface ClusterTlsContext {
  readonly hasIdentity: boolean
  readonly warnings: ConfigMessage[]
  /** Whether connections carry an original destination (bootstrap capture), which PASSTHROUGH clusters need. */
  readonly captured?: boolean
}

export function outboundClusters(
  services: ReadonlyMap<string, Service>,
  rules: readonly DestinationRuleResource[],
  include: (port: ServicePort) => boolean,
  node: NodeIdentity,
  tlsContext: ClusterTlsContext = { hasIdentity: false, warnings: [] },
): ClusterModel[] {
  const clusters: ClusterModel[] = []
  const byHost = indexDestinationRules(rules)
  let autoMtlsWithoutIdentity: Service | undefined
  let istioMutualWithoutIdentity: DestinationRuleResource | undefined
  let passthroughWithoutCapture: DestinationRuleResource | undefined
  for (const service of services.values()) {
    if (service.fqdn.startsWith('*')) continue
    const dr = byHost.lookup(service.fqdn)
    const topPolicy = dr?.spec.trafficPolicy
    if (dr !== undefined && tlsContext.captured !== true && usesPassthrough(dr))
      passthroughWithoutCapture ??= dr
    for (const port of service.ports) {
      if (!include(port)) continue
      const base = {
        direction: 'outbound' as const,
        host: service.fqdn,
        port: port.number,
        protocol: port.protocol,
        ...discoveryOf(service.resolution),
        ...(service.source.spec.location === 'MESH_EXTERNAL' ? { meshExternal: true as const } : {}),
      }
      const http2 = port.protocol === 'HTTP2' || port.protocol === 'GRPC'
      const tlsFor = (merged: MergedTrafficPolicy, subset: string): UpstreamTlsModel | undefined => {
        const tls = merged.tls
        if (tls === undefined && !tlsContext.hasIdentity && service.source.spec.location === 'MESH_INTERNAL')
          autoMtlsWithoutIdentity ??= service
        if (tls?.mode === 'ISTIO_MUTUAL' && !tlsContext.hasIdentity) istioMutualWithoutIdentity ??= dr
        return compileUpstreamTls(tls, {
          service,
          port: port.number,
          subset,
          http2,
          node,
          hasIdentity: tlsContext.hasIdentity,
          ruleFile: dr?.source.file,
        })
      }
      const merged = mergeTrafficPolicy(topPolicy, undefined, port.number)
      clusters.push({
        ...base,
        name: outboundClusterName(port.number, '', service.fqdn),
        subset: '',
        endpoints: withTls(endpointsFor(service, port, merged, node), tlsFor(merged, '')),
        connectTimeoutMs: connectTimeoutMs(merged),
        policy: clusterPolicy(merged),
        ...passthroughOf(merged),
      })
      for (const subset of dr?.spec.subsets ?? []) {
        const mergedSubset = mergeTrafficPolicy(topPolicy, subset.trafficPolicy, port.number)
        clusters.push({
          ...base,
          name: outboundClusterName(port.number, subset.name, service.fqdn),
          subset: subset.name,
          endpoints: withTls(
            endpointsFor(service, port, mergedSubset, node, subset.labels ?? {}),
            tlsFor(mergedSubset, subset.name),
          ),
          connectTimeoutMs: connectTimeoutMs(mergedSubset),
          policy: clusterPolicy(mergedSubset),
          ...passthroughOf(mergedSubset),
        })
      }
    }
  }
  const labelled = autoMtlsWithoutIdentity?.endpoints.some((e) => e.labels[TLS_MODE_LABEL] === 'istio')
  if (autoMtlsWithoutIdentity !== undefined && labelled === true) {
    const source = autoMtlsWithoutIdentity.source
    tlsContext.warnings.push({
      severity: 'warning',
      file: source.source.file,
      line: source.lineOf(['endpoints']),
      message:
        `endpoints of ${autoMtlsWithoutIdentity.fqdn} are labelled ${TLS_MODE_LABEL}: istio, but this proxy has no ` +
        'workload certificate (bootstrap tls): auto-mTLS is off and they are sent plain text',
    })
  }
  if (istioMutualWithoutIdentity !== undefined)
    warnNoIdentity(istioMutualWithoutIdentity, tlsContext.warnings)
  if (passthroughWithoutCapture !== undefined) {
    const dr = passthroughWithoutCapture
    tlsContext.warnings.push({
      severity: 'warning',
      file: dr.source.file,
      line: dr.lineOf(['trafficPolicy']),
      message:
        `DestinationRule ${dr.namespace}/${dr.name} load balances with PASSTHROUGH (each connection to its original destination), ` +
        'which only traffic capture gives (bootstrap capture: iptables | tproxy): without it its clusters have no host (503 UH)',
    })
  }
  return clusters
}

/** ISTIO_MUTUAL without a workload certificate: every connection fails (503 UF); said once per compile. */
function warnNoIdentity(dr: DestinationRuleResource, warnings: ConfigMessage[]): void {
  warnings.push({
    severity: 'warning',
    file: dr.source.file,
    line: dr.lineOf(['trafficPolicy']),
    message:
      `DestinationRule ${dr.namespace}/${dr.name} sets ISTIO_MUTUAL but this proxy has no workload certificate ` +
      '(bootstrap tls): its connections fail with 503 UF',
  })
}

/** Whether any level of the rule (top, port, subset) balances with PASSTHROUGH. */
function usesPassthrough(dr: DestinationRuleResource): boolean {
  const policies = [dr.spec.trafficPolicy, ...(dr.spec.subsets ?? []).map((s) => s.trafficPolicy)]
  return policies.some(
    (p) =>
      p?.loadBalancer?.simple === 'PASSTHROUGH' ||
      (p?.portLevelSettings ?? []).some((l) => l.loadBalancer?.simple === 'PASSTHROUGH'),
  )
}

/**
 * DestinationRule `loadBalancer.simple: PASSTHROUGH`: Istio makes the cluster ORIGINAL_DST with no
 * endpoints (pilot cluster_traffic_policy.go applyLoadBalancer), so each connection goes to its original destination.
 */
function passthroughOf(merged: MergedTrafficPolicy): {
  discovery?: ClusterDiscovery
  endpoints?: EndpointModel[]
} {
  return merged.loadBalancer?.simple === 'PASSTHROUGH' ? { discovery: 'ORIGINAL_DST', endpoints: [] } : {}
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
