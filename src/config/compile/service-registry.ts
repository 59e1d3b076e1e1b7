// The services this proxy can see: ServiceEntry hosts with their ports and endpoints, by FQDN.

import { isExportedTo, toFqdn } from '../hosts.ts'
import { localityFromLabels, withLocalityLabels } from '../locality.ts'
import type { ConfigMessage } from '../messages.ts'
import type { Resource, ServiceEntryResource } from '../resource.ts'

export interface ServicePort {
  readonly number: number
  /** Uppercase protocol; empty when undeclared. */
  readonly protocol: string
  readonly name: string
  readonly targetPort: number | undefined
}

export interface ServiceEndpoint {
  readonly address: string
  /** Port name → port, overriding the service port for this endpoint. */
  readonly ports: Readonly<Record<string, number>>
  /** With the topology labels of its locality added, as Istio augments them. */
  readonly labels: Readonly<Record<string, string>>
  readonly weight: number
  /** `region/zone/subzone`, or empty when unknown. */
  readonly locality: string
  /** The WorkloadEntry's service account (its SPIFFE identity for ISTIO_MUTUAL); absent when not given. */
  readonly serviceAccount?: string
}

export interface Service {
  readonly fqdn: string
  readonly namespace: string
  readonly ports: readonly ServicePort[]
  readonly endpoints: readonly ServiceEndpoint[]
  readonly resolution: string
  /**
   * The service's virtual addresses (ServiceEntry `addresses`: IPs or CIDRs), which captured traffic is
   * matched against by original destination and which the DNS proxy answers for the host.
   */
  readonly addresses: readonly string[]
  /** Set when `addresses` were allocated by the proxy (DNS auto allocation, compile/auto-allocate.ts), not written. */
  readonly autoAllocated?: true
  readonly source: ServiceEntryResource
}

/** Shared by every endpoint without labels (the schema gives each its own empty map). */
const noLabels: Readonly<Record<string, string>> = Object.freeze({})

function isEmpty(labels: Readonly<Record<string, string>>): boolean {
  for (const _ in labels) return false
  return true
}

/** HTTP-family protocols served by the HTTP data path (an undeclared protocol is sniffed as HTTP for now). */
export function isHttpProtocol(protocol: string): boolean {
  return protocol === '' || protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC'
}

/** Builds the registry; what it must leave out (unix sockets, VIPs without capture) is added to `warnings`. */
export function buildServiceRegistry(
  resources: readonly Resource[],
  proxyNamespace: string,
  warnings: ConfigMessage[],
): Map<string, Service> {
  const services = new Map<string, Service>()
  for (const r of resources) {
    if (r.kind !== 'ServiceEntry') continue
    if (!isExportedTo(r.spec.exportTo, r.namespace, proxyNamespace)) continue
    const spec = r.spec
    const ports: ServicePort[] = (spec.ports ?? []).map((p) => ({
      number: p.number,
      protocol: (p.protocol ?? '').toUpperCase(),
      name: p.name ?? '',
      targetPort: p.targetPort,
    }))
    const resolution = spec.resolution ?? 'NONE'
    const warn = (path: (string | number)[], message: string): void => {
      warnings.push({ severity: 'warning', file: r.source.file, line: r.lineOf(path), message })
    }
    if ((spec.addresses ?? []).length > 0) {
      warn(
        ['addresses'],
        'addresses match captured traffic by destination IP; without capture they are not used',
      )
    }
    const usable = (spec.endpoints ?? []).filter((e, i) => {
      if (!(e.address ?? '').startsWith('unix://')) return true
      warn(
        ['endpoints', i, 'address'],
        `endpoint ${e.address}: unix domain socket endpoints are not supported yet`,
      )
      return false
    })
    for (const host of spec.hosts) {
      const fqdn = toFqdn(host, r.namespace)
      let endpoints: ServiceEndpoint[] = usable.map((e) => {
        const labels = e.labels === undefined || isEmpty(e.labels) ? noLabels : e.labels
        const locality = e.locality ?? localityFromLabels(labels)
        return {
          address: e.address ?? '',
          ports: e.ports ?? {},
          labels: withLocalityLabels(labels, locality),
          weight: e.weight ?? 1,
          locality,
          ...(e.serviceAccount === undefined ? {} : { serviceAccount: e.serviceAccount }),
        }
      })
      // DNS resolution without endpoints means: resolve the host itself, as written (Istio's rule).
      if (endpoints.length === 0 && resolution.startsWith('DNS') && !fqdn.startsWith('*')) {
        endpoints = [{ address: host.toLowerCase(), ports: {}, labels: {}, weight: 1, locality: '' }]
      }
      const existing = services.get(fqdn)
      if (existing !== undefined) {
        // Several entries for one host merge, as Istio merges them: ports by number, endpoints appended.
        const known = new Set(existing.ports.map((p) => p.number))
        services.set(fqdn, {
          ...existing,
          ports: [...existing.ports, ...ports.filter((p) => !known.has(p.number))],
          endpoints: [...existing.endpoints, ...endpoints],
          addresses: [...new Set([...existing.addresses, ...(spec.addresses ?? [])])],
        })
        continue
      }
      services.set(fqdn, {
        fqdn,
        namespace: r.namespace,
        ports,
        endpoints,
        resolution,
        addresses: spec.addresses ?? [],
        source: r,
      })
    }
  }
  return services
}
