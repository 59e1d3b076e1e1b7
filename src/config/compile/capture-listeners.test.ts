// Unit tests for the listeners and clusters compiled under traffic capture (virtualOutbound / virtualInbound and the ones they hand connections to).

import { describe, expect, it } from 'vitest'
import { type Bootstrap, bootstrapSchema } from '../../bootstrap/schema.ts'
import { compileModel } from '../compile.ts'
import { ConfigError } from '../messages.ts'
import type { ListenerModel, Model } from '../model.ts'
import { parseResources } from '../parse-resources.ts'

/**
 * A bootstrap with DNS auto allocation off unless `autoAllocate`: these cases are about services without
 * `addresses`, which auto allocation (on by default under capture) gives a VIP of their own.
 */
function bootstrap(capture: 'none' | 'iptables' | 'tproxy', autoAllocate = false): Bootstrap {
  return {
    ...bootstrapSchema.parse({
      node: { labels: { app: 'client' } },
      capture,
      listeners: { dns: { autoAllocate } },
    }),
    file: 'bootstrap.yaml',
  }
}

function compile(
  yaml: string,
  capture: 'none' | 'iptables' | 'tproxy' = 'iptables',
  autoAllocate = false,
): Model {
  const b = bootstrap(capture, autoAllocate)
  const parsed = parseResources(yaml, 'istio.yaml', b.node.namespace)
  const errors = parsed.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0) throw new ConfigError(errors)
  return compileModel({ bootstrap: b, resources: parsed.resources, files: [], warnings: [], version: 1 })
}

const services = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: default}
spec:
  hosts: [web.example]
  addresses: [240.0.0.10]
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example]
  addresses: [240.0.0.20, 240.1.0.0/16]
  resolution: STATIC
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.2}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: cache, namespace: default}
spec:
  hosts: [cache.example]
  resolution: STATIC
  ports: [{number: 6379, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.0.0.3}]
`

const sidecar = (spec: string): string => `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
${spec}
`

function listener(model: Model, name: string): ListenerModel {
  const found = model.listeners.find((l) => l.name === name)
  if (found === undefined)
    throw new Error(`no listener ${name} in ${model.listeners.map((l) => l.name).join(', ')}`)
  return found
}

describe('capture listeners', () => {
  it('binds only 15001 and 15006; every service port gets an unbound listener, TCP VIPs and CIDRs their own', () => {
    const model = compile(services)
    const bound = model.listeners
      .filter((l) => l.bindToPort !== false)
      .map((l) => `${l.name} ${l.address}:${l.port}`)
    expect(bound).toEqual(['virtualOutbound 0.0.0.0:15001', 'virtualInbound 0.0.0.0:15006'])
    expect(listener(model, 'virtualOutbound').capture).toEqual({
      mode: 'iptables',
      ownPorts: [15001, 15006, 15000, 15090, 15021],
    })
    const unbound = model.listeners.filter((l) => l.bindToPort === false).map((l) => l.name)
    // HTTP is routed by Host on the port's shared listener, never by VIP (as Istio).
    expect(unbound.sort()).toEqual([
      '0.0.0.0_6379',
      '0.0.0.0_8080',
      '0.0.0.0_9000',
      '240.0.0.20_9000',
      '240.1.0.0/16_9000',
    ])
    const vip = listener(model, '240.0.0.20_9000')
    expect(
      vip.tcpRoutes.matchTcp({ sni: undefined, destinationAddress: '240.0.0.20' })?.destinations,
    ).toEqual([{ clusterName: 'outbound|9000||db.example', weight: 1 }])
    // The shared 9000 listener has no service without an address: what reaches it passes through.
    const shared = listener(model, '0.0.0.0_9000')
    expect(
      shared.tcpRoutes.matchTcp({ sni: undefined, destinationAddress: '10.9.9.9' })?.destinations,
    ).toEqual([{ clusterName: 'PassthroughCluster', weight: 1 }])
    // A service without addresses keeps the port's catch-all route, before the passthrough.
    const cache = listener(model, '0.0.0.0_6379')
    expect(
      cache.tcpRoutes.matchTcp({ sni: undefined, destinationAddress: '10.9.9.9' })?.destinations,
    ).toEqual([{ clusterName: 'outbound|6379||cache.example', weight: 1 }])
  })

  it('gives a service without addresses listeners on its auto-allocated VIPs when the DNS proxy allocates them', () => {
    const model = compile(services, 'iptables', true)
    const allocated = model.listeners
      .filter((l) => l.bindToPort === false && /^(240\.240\.|2001:2::)/.test(l.address))
      .map((l) => l.port)
    // One of each family (240.240.0.0/16 and 2001:2::/48), as Istio's auto allocation.
    expect(allocated).toEqual([6379, 6379])
  })

  it('routes unknown Hosts to PassthroughCluster under ALLOW_ANY (the mesh default), and 502 under REGISTRY_ONLY', () => {
    const allow = listener(compile(services), '0.0.0.0_8080').routeTable
    expect(allow.virtualHosts.map((v) => v.name)).toEqual(['web.example:8080', 'allow_any'])
    expect(allow.virtualHosts[1].routes[0].action).toMatchObject({
      kind: 'forward',
      destinations: [{ clusterName: 'PassthroughCluster' }],
    })
    const registryOnly = compile(services + sidecar('  outboundTrafficPolicy: {mode: REGISTRY_ONLY}'))
    const blocked = listener(registryOnly, '0.0.0.0_8080').routeTable
    expect(blocked.virtualHosts.map((v) => v.name)).toEqual(['web.example:8080', 'block_all'])
    const outbound = listener(registryOnly, 'virtualOutbound')
    expect(
      outbound.tcpRoutes.matchTcp({ sni: undefined, destinationAddress: '1.2.3.4' })?.destinations,
    ).toEqual([{ clusterName: 'BlackHoleCluster', weight: 1 }])
  })

  it('makes the passthrough clusters ORIGINAL_DST, the inbound one bound to 127.0.0.6 / ::6, and the blackhole empty', () => {
    const model = compile(services)
    expect(model.clusters.get('PassthroughCluster')).toMatchObject({
      discovery: 'ORIGINAL_DST',
      endpoints: [],
    })
    expect(model.clusters.get('InboundPassthroughCluster')).toMatchObject({
      direction: 'inbound',
      discovery: 'ORIGINAL_DST',
      upstreamBind: { ipv4: '127.0.0.6', ipv6: '::6' },
    })
    expect(model.clusters.get('BlackHoleCluster')).toMatchObject({ endpoints: [] })
    expect(model.clusters.get('BlackHoleCluster')?.discovery).toBeUndefined()
  })

  it('serves the inbound passthrough with detection, the workload mTLS mode, and TPROXY when asked', () => {
    const strict = `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
`
    const inbound = listener(compile(services + strict, 'tproxy'), 'virtualInbound')
    expect(inbound).toMatchObject({ serve: 'detect', direction: 'inbound', mtls: { mode: 'STRICT' } })
    expect(inbound.capture?.mode).toBe('tproxy')
    // Istio intercepts outbound traffic with REDIRECT in TPROXY mode too.
    expect(listener(compile(services, 'tproxy'), 'virtualOutbound').capture?.mode).toBe('iptables')
  })

  it('keeps Sidecar ingress ports unbound under capture, and a catch-all egress limits what is visible', () => {
    const model = compile(
      services +
        sidecar(`  ingress:
    - port: {number: 8080, protocol: HTTP, name: http}
      defaultEndpoint: 127.0.0.1:8080
  egress:
    - port: {number: 9000, protocol: TCP, name: tcp}
      hosts: ["./db.example"]
    - hosts: ["./web.example"]`),
    )
    expect(listener(model, '0.0.0.0_8080').bindToPort).toBe(false)
    const names = model.listeners.map((l) => `${l.direction} ${l.name}`).sort()
    expect(names).toEqual([
      'inbound 0.0.0.0_8080',
      'inbound virtualInbound',
      'outbound 0.0.0.0_8080',
      'outbound 0.0.0.0_9000',
      'outbound 240.0.0.20_9000',
      'outbound 240.1.0.0/16_9000',
      'outbound virtualOutbound',
    ])
    expect(model.warnings.map((w) => w.message).join('\n')).not.toMatch(/catch-all egress/)
  })

  it('still warns that a catch-all egress needs capture when there is none', () => {
    const model = compile(
      services +
        sidecar(
          `  egress:\n    - hosts: ["./*"]\n      port: {number: 9000, name: tcp, protocol: TCP}\n    - hosts: ["./*"]`,
        ),
      'none',
    )
    expect(model.warnings.map((w) => w.message)).toContain(
      'egress[1] has no port: a catch-all egress listener needs traffic capture and is skipped',
    )
    expect(model.listeners.some((l) => l.capture !== undefined)).toBe(false)
  })

  it('makes a DestinationRule PASSTHROUGH cluster ORIGINAL_DST', () => {
    const model = compile(`${services}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: default}
spec:
  host: db.example
  trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}
`)
    expect(model.clusters.get('outbound|9000||db.example')).toMatchObject({
      discovery: 'ORIGINAL_DST',
      endpoints: [],
    })
    expect(model.warnings.map((w) => w.message).join('\n')).not.toMatch(/PASSTHROUGH/)
    const uncaptured = compile(
      `${services}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: default}
spec:
  host: db.example
  trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}
`,
      'none',
    )
    expect(uncaptured.warnings.map((w) => w.message)).toContain(
      'DestinationRule default/db load balances with PASSTHROUGH (each connection to its original destination), which only traffic capture gives (bootstrap capture: iptables | tproxy): without it its clusters have no host (503 UH)',
    )
  })
})
