// Istio's host-name rules: short names live in a namespace, and a Host header may use any alias.

import { flat } from './flat-string.ts'

/** Kubernetes' cluster DNS suffix, as in `reviews.default.svc.cluster.local`. */
export const clusterDomain = 'cluster.local'

/** Expands a short name (`reviews`, `reviews.default`) to its FQDN; wildcards and FQDNs pass unchanged. */
export function toFqdn(host: string, namespace: string): string {
  const h = host.toLowerCase()
  if (h === '*' || h.startsWith('*.')) return h
  const parts = h.split('.')
  if (parts.length === 1) return flat(h, '.', namespace, '.svc.', clusterDomain)
  if (parts.length === 2 && parts[1] === namespace) return flat(h, '.svc.', clusterDomain)
  if (parts.length === 3 && parts[2] === 'svc') return flat(h, '.', clusterDomain)
  return h
}

/**
 * Every name a client in `proxyNamespace` may use for `fqdn`: for `reviews.default.svc.cluster.local`
 * seen from `default` that is also `reviews`, `reviews.default` and `reviews.default.svc`.
 */
export function hostAliases(fqdn: string, proxyNamespace: string): string[] {
  const suffix = `.svc.${clusterDomain}`
  if (fqdn.endsWith(suffix)) {
    const parts = fqdn.slice(0, -suffix.length).split('.')
    if (parts.length === 2) {
      const [name, ns] = parts
      // Array literals: exact size, where push would leave spare capacity in every virtual host.
      return ns === proxyNamespace
        ? [fqdn, flat(name, '.', ns, '.svc'), flat(name, '.', ns), name]
        : [fqdn, flat(name, '.', ns, '.svc'), flat(name, '.', ns)]
    }
  }
  return [fqdn]
}

/** Whether `host` is covered by `pattern` (`*`, `*.example.com` or an exact name). */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === '*') return true
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1)
    if (host.startsWith('*.')) return host.slice(1).endsWith(suffix)
    return host.endsWith(suffix)
  }
  return pattern === host
}

/**
 * The Host header forms of a service's virtual addresses, as pilot's generateVirtualHostDomains adds them
 * (GetAllAddressesForProxy, appendDomainPort): an IPv4 address as it is, an IPv6 one in brackets. A CIDR
 * names no single host: only a /32 or /128 one is kept, as its address (older pilot kept only those).
 */
export function addressHosts(addresses: readonly string[]): string[] {
  const out: string[] = []
  for (const address of addresses) {
    const slash = address.indexOf('/')
    const ip = slash === -1 ? address : address.slice(0, slash)
    const v6 = ip.includes(':')
    if (slash !== -1 && address.slice(slash + 1) !== (v6 ? '128' : '32')) continue
    out.push(v6 ? flat('[', ip.toLowerCase(), ']') : ip)
  }
  return out
}

/** Istio's exportTo: visible when unset, `*`, the viewer's namespace, or `.` from the same namespace. */
export function isExportedTo(
  exportTo: readonly string[] | undefined,
  ownerNamespace: string,
  viewerNamespace: string,
): boolean {
  if (exportTo === undefined || exportTo.length === 0) return true
  for (const e of exportTo) {
    if (e === '*' || e === viewerNamespace) return true
    if (e === '.' && ownerNamespace === viewerNamespace) return true
  }
  return false
}
