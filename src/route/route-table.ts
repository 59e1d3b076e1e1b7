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
}
