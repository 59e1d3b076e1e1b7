// The machine's resolvers as /etc/resolv.conf names them (nameserver and search lines), or the bootstrap's `dns.servers`.

import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'

/** A DNS server to forward to. */
export interface UpstreamServer {
  readonly address: string
  readonly port: number
  readonly family: 4 | 6
}

/** What the DNS proxy forwards with: the upstream servers in order, and the resolver's search domains. */
export interface ResolverConfig {
  readonly servers: readonly UpstreamServer[]
  /** Lowercase, without trailing dots. */
  readonly search: readonly string[]
}

/** Parses `ip`, `ip:port` or `[ipv6]:port` (the bootstrap's `dns.servers` forms); undefined when it is none of them. */
export function parseServer(text: string, defaultPort = 53): UpstreamServer | undefined {
  const bare = isIP(text)
  if (bare !== 0) return { address: text, port: defaultPort, family: bare as 4 | 6 }
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text)
  if (match === null) return undefined
  const family = isIP(match[1])
  const port = Number(match[2])
  if (family === 0 || port < 1 || port > 65535) return undefined
  return { address: match[1], port, family: family as 4 | 6 }
}

/** The `nameserver` and `search` lines of a resolv.conf text (the last `search` or `domain` line wins, as in glibc). */
export function parseResolvConf(text: string): ResolverConfig {
  const servers: UpstreamServer[] = []
  let search: string[] = []
  for (const line of text.split('\n')) {
    const [keyword, ...values] = line
      .replace(/[#;].*$/, '')
      .trim()
      .split(/\s+/)
    if (keyword === 'nameserver' && values[0] !== undefined) {
      // Node sends to a scoped IPv6 address (fe80::1%eth0) as it is; anything else unparsable is skipped.
      const server = parseServer(values[0])
      if (server !== undefined) servers.push(server)
    } else if (keyword === 'search' || keyword === 'domain') {
      search = values.filter((v) => v !== '').map((v) => v.toLowerCase().replace(/\.$/, ''))
    }
  }
  return { servers, search }
}

/**
 * The resolvers as Istio's agent reads them (pkg/dns/client/dns.go NewLocalDNSServer): /etc/resolv.conf's
 * name servers and search domains; `servers`, when given (the bootstrap's `dns.servers`), replace the
 * file's name servers. A missing file means no servers: every forwarded query then fails with SERVFAIL.
 */
export function loadResolverConfig(servers: readonly string[], path = '/etc/resolv.conf'): ResolverConfig {
  let file: ResolverConfig = { servers: [], search: [] }
  try {
    file = parseResolvConf(readFileSync(path, 'utf8'))
  } catch {}
  if (servers.length === 0) return file
  const given = servers.map((s) => parseServer(s)).filter((s): s is UpstreamServer => s !== undefined)
  return { servers: given, search: file.search }
}
