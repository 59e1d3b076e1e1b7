// Finds the resource for a host in constant time: exact FQDNs in a map, wildcards by longest suffix.

import { hostMatches } from './hosts.ts'

export class HostIndex<T> {
  readonly #exact = new Map<string, T>()
  #wildcards: [pattern: string, value: T][] = []
  #sorted = true

  /** Adds `value` under an FQDN or wildcard pattern; the first value added for a pattern wins. */
  add(pattern: string, value: T): void {
    if (pattern === '*' || pattern.startsWith('*.')) {
      if (this.#wildcards.some(([p]) => p === pattern)) return
      this.#wildcards.push([pattern, value])
      this.#sorted = false
    } else if (!this.#exact.has(pattern)) {
      this.#exact.set(pattern, value)
    }
  }

  /** The value for an exact match, else for the longest wildcard that covers `fqdn`. */
  lookup(fqdn: string): T | undefined {
    const exact = this.#exact.get(fqdn)
    if (exact !== undefined) return exact
    if (!this.#sorted) {
      // Stable sort: among equally long patterns the first added still wins.
      this.#wildcards.sort((a, b) => b[0].length - a[0].length)
      this.#sorted = true
    }
    for (const [pattern, value] of this.#wildcards) if (hostMatches(pattern, fqdn)) return value
    return undefined
  }
}
