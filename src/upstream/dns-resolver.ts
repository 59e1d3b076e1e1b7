// Name resolution for DNS clusters as Envoy's c-ares resolver does it: the hosts file first, then A/AAAA queries with their TTLs.

import { Resolver } from 'node:dns/promises'
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import type { DnsLookupFamily, DnsSettings } from '../bootstrap/dns.ts'
import { defaultDnsSettings } from '../bootstrap/dns-defaults.ts'
import { parseDurationMs } from '../config/duration.ts'

/** One resolution's addresses, in answer order, and the smallest TTL among them (0: none given). */
export interface DnsAnswer {
  readonly addresses: readonly string[]
  readonly ttlMs: number
}

/** A resolution that failed (timeout, SERVFAIL, refused): a cluster keeps the hosts it had. */
export class DnsResolutionError extends Error {
  readonly code: string

  constructor(name: string, code: string) {
    super(`resolving ${name} failed: ${code}`)
    this.name = 'DnsResolutionError'
    this.code = code
  }
}

/** Envoy's c-ares resolver treats "no such name" and "no records" as a successful empty answer (dns_impl.cc). */
const emptyAnswerCodes = new Set(['ENODATA', 'ENOTFOUND'])
const noAnswer: DnsAnswer = { addresses: [], ttlMs: 0 }

/** Owned by the cluster manager: one resolver (and set of servers) for every DNS cluster. */
export class DnsResolver {
  /** MeshConfig dnsRefreshRate: the next resolution when an answer has no TTL, or failed. */
  readonly refreshRateMs: number
  readonly #family: DnsLookupFamily
  readonly #resolver: Resolver
  readonly #hostsFile: string

  constructor(settings: DnsSettings = defaultDnsSettings, hostsFile = '/etc/hosts') {
    this.refreshRateMs = parseDurationMs(settings.refreshRate)
    this.#family = settings.lookupFamily
    // c-ares' defaults as Node sets them retry for tens of seconds; a cluster warming on a dead
    // server should give up within seconds and try again at the refresh rate.
    this.#resolver = new Resolver({ timeout: 2000, tries: 2 })
    if (settings.servers.length > 0) this.#resolver.setServers(settings.servers)
    this.#hostsFile = hostsFile
  }

  /** The addresses of `name` in the configured family; rejects with DnsResolutionError on failure. */
  async resolve(name: string): Promise<DnsAnswer> {
    if (isIP(name) !== 0) return { addresses: [name], ttlMs: 0 }
    const fromFile = await this.#fromHostsFile(name)
    if (fromFile.addresses.length > 0) return fromFile
    switch (this.#family) {
      case 'V4_ONLY':
        return this.#query(name, 4)
      case 'V6_ONLY':
        return this.#query(name, 6)
      case 'V4_PREFERRED':
        return orElse(await this.#query(name, 4), () => this.#query(name, 6))
      case 'AUTO':
        return orElse(await this.#query(name, 6), () => this.#query(name, 4))
      case 'ALL': {
        const [v4, v6] = await Promise.all([this.#query(name, 4), this.#query(name, 6)])
        return { addresses: [...v4.addresses, ...v6.addresses], ttlMs: minTtl(v4.ttlMs, v6.ttlMs) }
      }
    }
  }

  async #query(name: string, version: 4 | 6): Promise<DnsAnswer> {
    try {
      const records =
        version === 4
          ? await this.#resolver.resolve4(name, { ttl: true })
          : await this.#resolver.resolve6(name, { ttl: true })
      let ttl = Infinity
      for (const r of records) ttl = Math.min(ttl, r.ttl)
      return { addresses: records.map((r) => r.address), ttlMs: records.length === 0 ? 0 : ttl * 1000 }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN'
      if (emptyAnswerCodes.has(code)) return noAnswer
      throw new DnsResolutionError(name, code)
    }
  }

  /**
   * c-ares' getaddrinfo looks in the hosts file before asking a server, and answers `localhost`
   * itself when the file does not list it (RFC 6761); such answers carry no TTL.
   */
  async #fromHostsFile(name: string): Promise<DnsAnswer> {
    const wanted = name.toLowerCase().replace(/\.$/, '')
    const found: string[] = []
    let text = ''
    try {
      text = await readFile(this.#hostsFile, 'latin1')
    } catch {
      // No hosts file: only DNS answers.
    }
    for (const line of text.split('\n')) {
      const fields = line.replace(/#.*/, '').trim().split(/\s+/)
      if (fields.length < 2 || isIP(fields[0]) === 0) continue
      for (let i = 1; i < fields.length; i++) {
        if (fields[i].toLowerCase() === wanted && !found.includes(fields[0])) found.push(fields[0])
      }
    }
    if (found.length === 0 && wanted === 'localhost') found.push('127.0.0.1', '::1')
    return { addresses: this.#inFamily(found), ttlMs: 0 }
  }

  /** The addresses the lookup family allows, preferred family first. */
  #inFamily(addresses: readonly string[]): string[] {
    const v4 = addresses.filter((a) => isIP(a) === 4)
    const v6 = addresses.filter((a) => isIP(a) === 6)
    switch (this.#family) {
      case 'V4_ONLY':
        return v4
      case 'V6_ONLY':
        return v6
      case 'V4_PREFERRED':
        return v4.length > 0 ? v4 : v6
      case 'AUTO':
        return v6.length > 0 ? v6 : v4
      case 'ALL':
        return [...v4, ...v6]
    }
  }
}

async function orElse(first: DnsAnswer, second: () => Promise<DnsAnswer>): Promise<DnsAnswer> {
  return first.addresses.length > 0 ? first : second()
}

function minTtl(a: number, b: number): number {
  if (a === 0) return b
  if (b === 0) return a
  return Math.min(a, b)
}
