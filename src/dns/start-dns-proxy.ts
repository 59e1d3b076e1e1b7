// Starts the DNS proxy when the bootstrap asks for it (listeners.dns, or capture), with the resolvers and metrics it forwards and counts with.

import { dnsProxySettings } from '../bootstrap/dns-proxy-settings.ts'
import type { Bootstrap } from '../bootstrap/schema.ts'
import type { DnsTable } from '../config/compile/dns-table.ts'
import type { StatsRegistry } from '../telemetry/stats-registry.ts'
import { DnsProxy } from './dns-proxy.ts'
import { DnsStats } from './dns-stats.ts'
import { loadResolverConfig } from './resolv-conf.ts'

/** The running DNS proxy, or undefined when the bootstrap does not run one; rejects when its port cannot be bound. */
export async function startDnsProxy(
  bootstrap: Bootstrap,
  table: () => DnsTable | undefined,
  stats: StatsRegistry,
): Promise<DnsProxy | undefined> {
  const settings = dnsProxySettings(bootstrap)
  if (settings === undefined) return undefined
  const proxy = new DnsProxy({
    address: settings.address,
    port: settings.port,
    resolvers: loadResolverConfig(bootstrap.dns?.servers ?? []),
    table,
    stats: new DnsStats(stats),
  })
  await proxy.start()
  return proxy
}
