// The bootstrap's `dns`: the resolvers, refresh rate and address family of DNS-resolved clusters (ServiceEntry resolution DNS / DNS_ROUND_ROBIN).

import { isIP } from 'node:net'
import { z } from 'zod'
import { timeoutDurationSchema } from '../config/istio/fields.ts'

/**
 * Envoy's dns_lookup_family values. Istio picks one from the proxy's own addresses
 * (pilot/pkg/networking/util SelectDNSLookupFamily): V4_ONLY for an IPv4 or unknown address,
 * V6_ONLY (or ALL) for IPv6 only, ALL for dual stack when ISTIO_DUAL_STACK is on.
 */
export const dnsLookupFamilies = ['V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'AUTO', 'ALL'] as const
export type DnsLookupFamily = (typeof dnsLookupFamilies)[number]

/** A resolver as node:dns Resolver#setServers takes it: `ip`, `ip:port` or `[ipv6]:port`. */
const dnsServerSchema = z.string().superRefine((server, ctx) => {
  if (!isDnsServer(server))
    ctx.addIssue({ code: 'custom', message: `'${server}' is not an IP address, IPv4:port or [IPv6]:port` })
})

function isDnsServer(server: string): boolean {
  if (isIP(server) !== 0) return true
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(server)
  const withPort = bracketed ?? /^([^:]+):(\d+)$/.exec(server)
  if (withPort === null) return false
  const port = Number(withPort[2])
  return isIP(withPort[1]) === (bracketed !== null ? 6 : 4) && port >= 1 && port <= 65535
}

/**
 * Mirrors Envoy's cluster dns_resolution_config.resolvers (Istio leaves them to the pod's
 * /etc/resolv.conf) and MeshConfig dnsRefreshRate (default 60s, pkg/config/mesh/mesh.go), which
 * Istio sets as each DNS cluster's dns_refresh_rate beside respect_dns_ttl: true.
 */
export const dnsSchema = z.strictObject({
  /** Name servers queried instead of the system's (/etc/resolv.conf); the hosts file is read first either way. */
  servers: z.array(dnsServerSchema).default([]),
  /** How often a name is resolved again when its answer carries no TTL (or failed). */
  refreshRate: timeoutDurationSchema.default('60s'),
  lookupFamily: z.enum(dnsLookupFamilies).default('V4_ONLY'),
})

export type DnsSettings = z.infer<typeof dnsSchema>
