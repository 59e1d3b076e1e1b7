// Unit tests for the bootstrap's `dns` section: defaults as Istio's, resolver addresses validated.

import { describe, expect, it } from 'vitest'
import { dnsSchema } from './dns.ts'
import { defaultDnsSettings } from './dns-defaults.ts'
import { bootstrapSchema } from './schema.ts'

const problems = (dns: unknown) => {
  const result = bootstrapSchema.safeParse({ dns })
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
}

describe('bootstrap dns', () => {
  it("defaults to the system's resolvers, MeshConfig's 60s dnsRefreshRate and Istio's V4_ONLY", () => {
    expect(defaultDnsSettings).toEqual({ servers: [], refreshRate: '60s', lookupFamily: 'V4_ONLY' })
    // The data path's plain copy (dns-defaults.ts, no zod) is what the schema gives for an empty section.
    expect(dnsSchema.parse({})).toEqual(defaultDnsSettings)
    expect(bootstrapSchema.parse({}).dns).toBeUndefined()
  })

  it('accepts resolvers as node:dns setServers takes them', () => {
    const dns = dnsSchema.parse({ servers: ['127.0.0.1', '127.0.0.1:5353', '::1', '[::1]:5353'] })
    expect(dns.servers).toHaveLength(4)
    expect(problems({ servers: ['10.0.0.1:53'], refreshRate: '5s', lookupFamily: 'ALL' })).toEqual([])
  })

  it('names what is wrong', () => {
    expect(
      problems({ servers: ['dns.example.com', '127.0.0.1:0', '127.0.0.1:53:53', '[127.0.0.1]:53'] }),
    ).toEqual([
      "dns.servers.0: 'dns.example.com' is not an IP address, IPv4:port or [IPv6]:port",
      "dns.servers.1: '127.0.0.1:0' is not an IP address, IPv4:port or [IPv6]:port",
      "dns.servers.2: '127.0.0.1:53:53' is not an IP address, IPv4:port or [IPv6]:port",
      "dns.servers.3: '[127.0.0.1]:53' is not an IP address, IPv4:port or [IPv6]:port",
    ])
    expect(problems({ refreshRate: '0s' })).toHaveLength(1)
    expect(problems({ lookupFamily: 'V4' })).toHaveLength(1)
    expect(problems({ resolvers: [] })).toHaveLength(1)
  })
})
