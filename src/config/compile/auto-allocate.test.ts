// Unit tests for DNS auto allocation: which hosts get addresses, from which ranges, and that they stay put.

import { BlockList } from 'node:net'
import { describe, expect, it } from 'vitest'
import { type Bootstrap, bootstrapSchema } from '../../bootstrap/schema.ts'
import { compileModel } from '../compile.ts'
import { ConfigError } from '../messages.ts'
import type { Model } from '../model.ts'
import { parseResources } from '../parse-resources.ts'
import { slotAddresses, withAllocatedAddresses } from './auto-allocate.ts'
import type { Service } from './service-registry.ts'

const b: Bootstrap = {
  ...bootstrapSchema.parse({ listeners: { dns: { enabled: true } } }),
  file: 'bootstrap.yaml',
}

function compile(yaml: string): Model {
  const parsed = parseResources(yaml, 'istio.yaml', 'default')
  const errors = parsed.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0) throw new ConfigError(errors)
  return compileModel({ bootstrap: b, resources: parsed.resources, files: [], warnings: [], version: 1 })
}

function entry(host: string, extra: string, namespace = 'default'): string {
  return `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.replace(/[^a-z0-9]/g, '-').replace(/^-+/, '')}, namespace: ${namespace}}
spec:
  hosts: ['${host}']
  ports: [{number: 80, name: http}]
${extra}
`
}

const ranges = new BlockList()
ranges.addSubnet('240.240.0.0', 16, 'ipv4')
ranges.addSubnet('2001:2::', 48, 'ipv6')

/** The allocated addresses of every host, read from the compiled model's answers. */
function allocations(model: Model): Map<string, string> {
  const out = new Map<string, string>()
  for (const [name, addresses] of model.dnsTable.names) out.set(name, addresses.v4.join(','))
  return out
}

describe('DNS auto allocation', () => {
  it('gives hosts without addresses one IPv4 and one IPv6 address from the reserved ranges, in the registry', () => {
    const registry = new Map<string, Service>()
    for (let i = 0; i < 2000; i++) {
      const fqdn = `host-${i}.example.com`
      registry.set(fqdn, {
        fqdn,
        namespace: 'default',
        ports: [],
        endpoints: [],
        resolution: 'DNS',
        addresses: [],
        source: undefined as never,
      })
    }
    const allocated = withAllocatedAddresses(registry)
    const seen = new Set<string>()
    for (const service of allocated.values()) {
      expect(service.autoAllocated).toBe(true)
      const [v4, v6] = service.addresses
      expect(ranges.check(v4, 'ipv4'), v4).toBe(true)
      expect(ranges.check(v6, 'ipv6'), v6).toBe(true)
      expect(v4).not.toMatch(/\.(0|255)$/)
      seen.add(v4)
      seen.add(v6)
    }
    // Collisions (2000 hosts in 65024 slots make some) were probed away: no address is given twice.
    expect(seen.size).toBe(4000)
  })

  it('allocates only for hosts without addresses, not wildcards, resolution other than NONE', () => {
    const model = compile(
      entry('static.example.com', '  resolution: STATIC\n  endpoints: [{address: 10.0.0.1}]') +
        entry('dns.example.com', '  resolution: DNS') +
        entry('given.example.com', '  resolution: DNS\n  addresses: [192.0.2.1]') +
        entry('none.example.com', '  resolution: NONE') +
        entry('*.wild.example.com', '  resolution: DNS'),
    )
    const names = allocations(model)
    expect(names.get('static.example.com')).toMatch(/^240\.240\.\d+\.\d+$/)
    expect(names.get('dns.example.com')).toMatch(/^240\.240\.\d+\.\d+$/)
    expect(names.get('given.example.com')).toBe('192.0.2.1')
    expect(names.has('none.example.com')).toBe(false)
    expect(model.dnsTable.wildcards.size).toBe(0)
  })

  it('gives the same host the same address whatever the order of the files and the other hosts', () => {
    const hosts = ['a.example.com', 'b.example.com', 'c.example.com', 'reviews']
    const yaml = hosts.map((h) => entry(h, '  resolution: DNS'))
    const first = allocations(compile(yaml.join('')))
    const reversed = allocations(compile([...yaml].reverse().join('')))
    expect(reversed).toEqual(first)
    const fewer = allocations(compile(yaml.slice(1).join('')))
    for (const host of hosts.slice(1)) expect(fewer.get(host)).toBe(first.get(host))
    // The short forms answer the same address as the host.
    expect(first.get('reviews.default.svc.cluster.local')).toBe(first.get('reviews'))
  })

  it('keys the hash on namespace and host, as Istio does', () => {
    const here = allocations(compile(entry('svc.example.com', '  resolution: DNS')))
    const there = allocations(compile(entry('svc.example.com', '  resolution: DNS', 'elsewhere')))
    expect(here.get('svc.example.com')).not.toBe(there.get('svc.example.com'))
  })

  it('maps a slot to the same two octets in both families', () => {
    expect(slotAddresses(0)).toEqual(['240.240.0.1', '2001:2::f0f0:1'])
    expect(slotAddresses(253)).toEqual(['240.240.0.254', '2001:2::f0f0:fe'])
    expect(slotAddresses(254)).toEqual(['240.240.1.1', '2001:2::f0f0:101'])
    expect(slotAddresses(256 * 254 - 1)).toEqual(['240.240.255.254', '2001:2::f0f0:fffe'])
  })
})
