// Unit tests for the DNS proxy's name table: which names a ServiceEntry host answers as, with which addresses.

import { describe, expect, it } from 'vitest'
import { type Bootstrap, bootstrapSchema } from '../../bootstrap/schema.ts'
import { compileModel } from '../compile.ts'
import { ConfigError } from '../messages.ts'
import type { Model } from '../model.ts'
import { parseResources } from '../parse-resources.ts'

function bootstrap(dns: Record<string, unknown> = { enabled: true }, namespace = 'default'): Bootstrap {
  return { ...bootstrapSchema.parse({ node: { namespace }, listeners: { dns } }), file: 'bootstrap.yaml' }
}

function compile(yaml: string, b = bootstrap()): Model {
  const parsed = parseResources(yaml, 'istio.yaml', b.node.namespace)
  const errors = parsed.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0) throw new ConfigError(errors)
  return compileModel({ bootstrap: b, resources: parsed.resources, files: [], warnings: [], version: 1 })
}

function entry(name: string, namespace: string, spec: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${spec}
`
}

const reviews = entry(
  'reviews',
  'default',
  `  hosts: [reviews]
  addresses: [10.96.0.10, fd00::10]
  resolution: STATIC
  ports: [{number: 9080, name: http}]
  endpoints: [{address: 10.0.0.1}]`,
)
const ratings = entry(
  'ratings',
  'other',
  `  hosts: [ratings.other.svc.cluster.local]
  addresses: [10.96.0.11]
  resolution: STATIC
  ports: [{number: 9080, name: http}]
  endpoints: [{address: 10.0.0.2}]`,
)

describe('DNS name table', () => {
  it('answers a Kubernetes-style host by the short forms the agent adds, the bare name only in the proxy namespace', () => {
    const table = compile(reviews + ratings).dnsTable
    const own = { v4: ['10.96.0.10'], v6: ['fd00::10'] }
    for (const name of [
      'reviews.default.svc.cluster.local',
      'reviews.default.svc',
      'reviews.default',
      'reviews',
    ])
      expect(table.names.get(name), name).toEqual(own)
    const other = { v4: ['10.96.0.11'], v6: [] }
    for (const name of ['ratings.other.svc.cluster.local', 'ratings.other.svc', 'ratings.other'])
      expect(table.names.get(name), name).toEqual(other)
    // `ratings` alone names a service in the proxy's own namespace, and there is none.
    expect(table.names.has('ratings')).toBe(false)
  })

  it('answers other hosts only by their full name', () => {
    const table = compile(
      entry(
        'api',
        'default',
        `  hosts: [api.example.com]
  addresses: [192.0.2.7]
  resolution: DNS
  ports: [{number: 443, name: https, protocol: HTTPS}]`,
      ),
    ).dnsTable
    expect([...table.names.keys()]).toEqual(['api.example.com'])
  })

  it('skips CIDR addresses and leaves DNS hosts without addresses to upstream when not allocating', () => {
    const yaml =
      entry(
        'cidr',
        'default',
        `  hosts: [cidr.example.com]
  addresses: [10.1.0.0/16]
  resolution: NONE
  ports: [{number: 80, name: http}]`,
      ) +
      entry(
        'external',
        'default',
        `  hosts: [www.example.com]
  resolution: DNS
  ports: [{number: 80, name: http}]`,
      )
    const table = compile(yaml, bootstrap({ enabled: true, autoAllocate: false })).dnsTable
    expect(table.names.has('cidr.example.com')).toBe(false)
    expect(table.names.has('www.example.com')).toBe(false)
  })

  it('keeps wildcard hosts with addresses apart, and never allocates for them', () => {
    const yaml =
      entry(
        'wild',
        'default',
        `  hosts: ['*.wild.example.com']
  addresses: [192.0.2.9]
  resolution: NONE
  ports: [{number: 80, name: http}]`,
      ) +
      entry(
        'wild2',
        'default',
        `  hosts: ['*.other.example.com']
  resolution: DNS
  ports: [{number: 80, name: http}]`,
      )
    const model = compile(yaml)
    expect(model.dnsTable.wildcards.get('wild.example.com')).toEqual({ v4: ['192.0.2.9'], v6: [] })
    expect(model.dnsTable.wildcards.has('other.example.com')).toBe(false)
    expect(model.dnsTable.names.size).toBe(0)
  })

  it('is empty when the DNS proxy does not run, and allocates nothing then', () => {
    const external = entry(
      'external',
      'default',
      `  hosts: [www.example.com]
  resolution: DNS
  ports: [{number: 80, name: http}]`,
    )
    const off = compile(reviews + external, bootstrap({}))
    expect(off.dnsTable.names.size).toBe(0)
    const on = compile(reviews + external)
    expect(on.dnsTable.names.get('www.example.com')?.v4).toHaveLength(1)
  })

  it('runs by default exactly when capture is not none', async () => {
    const { dnsProxySettings } = await import('../../bootstrap/dns-proxy-settings.ts')
    const listeners = { dns: { port: 15053, address: '127.0.0.1', autoAllocate: true } }
    expect(dnsProxySettings({ capture: 'none', listeners })).toBeUndefined()
    expect(dnsProxySettings({ capture: 'iptables', listeners })).toEqual({
      port: 15053,
      address: '127.0.0.1',
      autoAllocate: true,
    })
    expect(
      dnsProxySettings({ capture: 'iptables', listeners: { dns: { ...listeners.dns, enabled: false } } }),
    ).toBeUndefined()
    expect(bootstrapSchema.parse({}).listeners.dns).toEqual({
      port: 15053,
      address: '127.0.0.1',
      autoAllocate: true,
    })
  })
})
