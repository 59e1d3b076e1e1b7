// The DNS proxy's name table: every name of a ServiceEntry host and the addresses it answers with (pilot's BuildNameTable and the agent's alternate hosts).

import { isIP } from 'node:net'
import { dnsProxySettings } from '../../bootstrap/dns-proxy-settings.ts'
import type { Bootstrap } from '../../bootstrap/schema.ts'
import { hostAliases } from '../hosts.ts'
import { withAllocatedAddresses } from './auto-allocate.ts'
import type { Service } from './service-registry.ts'

/** What a name answers: A and AAAA records. */
export interface DnsAddresses {
  readonly v4: readonly string[]
  readonly v6: readonly string[]
}

/** Names the DNS proxy answers itself; any other name is forwarded to the upstream resolvers. */
export interface DnsTable {
  /** Lowercase names without the trailing dot: each host and its Kubernetes short forms. */
  readonly names: ReadonlyMap<string, DnsAddresses>
  /** Wildcard hosts with addresses, by the suffix after `*.` (`*.example.com` → `example.com`). */
  readonly wildcards: ReadonlyMap<string, DnsAddresses>
}

export const emptyDnsTable: DnsTable = { names: new Map(), wildcards: new Map() }

/**
 * The addresses a host answers with, as pilot's BuildNameTable (pkg/dns/server/name_table.go) picks them:
 * its virtual addresses, IPs only (a CIDR cannot be an answer). Its answer from endpoint IPs (resolution
 * NONE) is for Kubernetes headless services: a ServiceEntry with NONE may not list endpoints. An
 * auto-allocated host answers with its IPv4 address only, as Istio answers a proxy that is not dual stack.
 */
function addressesOf(service: Service): DnsAddresses | undefined {
  const v4: string[] = []
  const v6: string[] = []
  const add = (address: string): void => {
    const family = isIP(address)
    if (family === 4) v4.push(address)
    else if (family === 6) v6.push(address)
  }
  if (service.autoAllocated === true) {
    for (const address of service.addresses) if (isIP(address) === 4) v4.push(address)
  } else {
    for (const address of service.addresses) add(address)
  }
  if (v4.length === 0 && v6.length === 0) return undefined
  return { v4: [...new Set(v4)], v6: [...new Set(v6)] }
}

/**
 * Compiles the table from the registry. A host `name.ns.svc.cluster.local` also answers as `name.ns.svc`
 * and `name.ns`, and as `name` from the proxy's own namespace: the alternate hosts the agent adds for a
 * Kubernetes service (pkg/dns/client/dns.go generateAltHosts). ServiceEntry is this proxy's only registry,
 * so a ServiceEntry with such a host stands in for the Kubernetes service. A name given by a host itself
 * wins over the same name as another host's short form.
 */
export function compileDnsTable(services: ReadonlyMap<string, Service>, proxyNamespace: string): DnsTable {
  const names = new Map<string, DnsAddresses>()
  const wildcards = new Map<string, DnsAddresses>()
  const shortForms: [string, DnsAddresses][] = []
  for (const service of services.values()) {
    const addresses = addressesOf(service)
    if (addresses === undefined) continue
    if (service.fqdn === '*') continue
    if (service.fqdn.startsWith('*.')) {
      wildcards.set(service.fqdn.slice(2), addresses)
      continue
    }
    names.set(service.fqdn, addresses)
    for (const alias of hostAliases(service.fqdn, proxyNamespace)) {
      if (alias !== service.fqdn) shortForms.push([alias, addresses])
    }
  }
  for (const [alias, addresses] of shortForms) if (!names.has(alias)) names.set(alias, addresses)
  return { names, wildcards }
}

/**
 * The registry as the rest of the model sees it, with the addresses auto allocation gives (only while the
 * DNS proxy runs with `autoAllocate`, as Istio uses them only for a proxy that captures DNS), and the DNS
 * proxy's table (empty when it does not run).
 */
export function withDnsNames(
  registry: Map<string, Service>,
  bootstrap: Bootstrap,
): { services: Map<string, Service>; dnsTable: DnsTable } {
  const dnsProxy = dnsProxySettings(bootstrap)
  if (dnsProxy === undefined) return { services: registry, dnsTable: emptyDnsTable }
  const services = dnsProxy.autoAllocate ? withAllocatedAddresses(registry) : registry
  return { services, dnsTable: compileDnsTable(services, bootstrap.node.namespace) }
}
