// One DNS name of a cluster (Envoy's ResolveTarget): resolved again on each TTL or refresh interval, telling the cluster when its addresses change.

import type { LookupFunction } from 'node:net'
import type { DnsResolver } from './dns-resolver.ts'

/**
 * As Envoy's STRICT_DNS and LOGICAL_DNS clusters resolve (source/extensions/clusters/strict_dns/
 * strict_dns_cluster.cc): the next resolution follows the answer's smallest TTL when it has one
 * (Istio sets respect_dns_ttl), else the refresh rate (MeshConfig dnsRefreshRate); a failed
 * resolution keeps the addresses it had and tries again after the refresh rate; an empty answer
 * (NXDOMAIN, no records) empties them.
 */
export class DnsTarget {
  readonly name: string
  /** The addresses of the last answer, deduplicated, in answer order; empty until the first one. */
  addresses: readonly string[] = []
  /** The first address of the last answer that had any: a LOGICAL_DNS host keeps it through empty answers. */
  #logicalAddress: string | undefined
  /** Resolutions that failed (kept for /clusters and tests). */
  failures = 0
  /** Settles once the first resolution answered or failed (Envoy's cluster warming). */
  readonly firstResolution: Promise<void>
  readonly #resolver: DnsResolver
  readonly #onChange: () => void
  #settleFirst: () => void = () => {}
  #timer: NodeJS.Timeout | undefined
  #stopped = false

  /** Starts resolving at once; `onChange` runs after each answer that changed the addresses. */
  constructor(name: string, resolver: DnsResolver, onChange: () => void) {
    this.name = name
    this.#resolver = resolver
    this.#onChange = onChange
    this.firstResolution = new Promise((resolve) => {
      this.#settleFirst = resolve
    })
    void this.#resolve()
  }

  readonly #resolve = async (): Promise<void> => {
    this.#timer = undefined
    let nextMs = this.#resolver.refreshRateMs
    try {
      const answer = await this.#resolver.resolve(this.name)
      if (answer.addresses.length > 0 && answer.ttlMs > 0) nextMs = answer.ttlMs
      const addresses = [...new Set(answer.addresses)]
      if (addresses.length > 0) this.#logicalAddress = addresses[0]
      if (!this.#stopped && !sameList(addresses, this.addresses)) {
        this.addresses = addresses
        this.#onChange()
      }
    } catch {
      this.failures++
    }
    this.#settleFirst()
    if (this.#stopped) return
    this.#timer = setTimeout(this.#resolve, nextMs)
    this.#timer.unref()
  }

  /**
   * For a LOGICAL_DNS host's connections: the name's first address when the connection opens
   * (Envoy's logical_dns_cluster.cc takes the first address of the latest non-empty answer).
   */
  readonly lookup: LookupFunction = (_hostname, options, callback) => {
    const address = this.#logicalAddress
    if (address === undefined) {
      const error: NodeJS.ErrnoException = new Error(`no address for ${this.name}`)
      error.code = 'ENOTFOUND'
      callback(error, '', 4)
      return
    }
    const family = address.includes(':') ? 6 : 4
    if (options.all === true) callback(null, [{ address, family }])
    else callback(null, address, family)
  }

  stop(): void {
    this.#stopped = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#settleFirst()
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
