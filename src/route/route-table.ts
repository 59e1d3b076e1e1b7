// A listener's route table: the Host header picks a virtual host, whose first matching route wins.

import type { Route } from './route.ts'

export interface VirtualHost {
  /** Istio's name, `<fqdn>:<port>` (e.g. `reviews.default.svc.cluster.local:9080`). */
  readonly name: string
  /** Every name the Host header may carry for it, with and without the port. */
  readonly domains: readonly string[]
  /** The service port, for `match.port`. */
  readonly port: number
  readonly routes: readonly Route[]
  /** `namespace/name` of the VirtualService its routes come from; absent: the service's default route. */
  readonly virtualService?: string
}

/** How `RouteTable.lookup` chose a virtual host, for `outrigger explain`. */
export interface VirtualHostChoice {
  readonly virtualHost: VirtualHost
  /** `exact`: a domain equal to the authority (case-insensitively); `wildcard`: the longest `*.suffix`; `catch-all`: `*`. */
  readonly rule: 'exact' | 'wildcard' | 'catch-all'
  /** The domain that matched, as the table keeps it (lowercase). */
  readonly domain: string
}

export class RouteTable {
  readonly name: string
  readonly virtualHosts: readonly VirtualHost[]
  readonly #exact = new Map<string, VirtualHost>()
  /** `*.example.com` domains as [suffix `.example.com`, host], longest suffix first. */
  readonly #wildcards: [string, VirtualHost][] = []
  #catchAll: VirtualHost | undefined

  constructor(name: string, virtualHosts: readonly VirtualHost[]) {
    this.name = name
    this.virtualHosts = virtualHosts
    for (const vh of virtualHosts) {
      for (const domain of vh.domains) {
        const d = domain.toLowerCase()
        if (d === '*') this.#catchAll ??= vh
        else if (d.startsWith('*')) this.#wildcards.push([d.slice(1), vh])
        else if (!this.#exact.has(d)) this.#exact.set(d, vh)
      }
    }
    this.#wildcards.sort((a, b) => b[0].length - a[0].length)
  }

  /** The virtual host for a Host header value (case-insensitive, with or without port). */
  lookup(authority: string): VirtualHost | undefined {
    const exact = this.#exact.get(authority)
    if (exact !== undefined) return exact
    const host = authority.toLowerCase()
    const found = this.#exact.get(host)
    if (found !== undefined) return found
    for (const [suffix, vh] of this.#wildcards) {
      if (host.endsWith(suffix) && host.length > suffix.length) return vh
    }
    return this.#catchAll
  }

  /**
   * What `lookup` returns and which rule chose it: the same maps searched in the same order (a property
   * test holds the two together). For `outrigger explain`, off the request path.
   */
  explainLookup(authority: string): VirtualHostChoice | undefined {
    const host = authority.toLowerCase()
    const exact = this.#exact.get(authority) ?? this.#exact.get(host)
    if (exact !== undefined)
      return { virtualHost: exact, rule: 'exact', domain: this.#exact.has(authority) ? authority : host }
    for (const [suffix, vh] of this.#wildcards) {
      if (host.endsWith(suffix) && host.length > suffix.length)
        return { virtualHost: vh, rule: 'wildcard', domain: `*${suffix}` }
    }
    return this.#catchAll === undefined
      ? undefined
      : { virtualHost: this.#catchAll, rule: 'catch-all', domain: '*' }
  }
}
