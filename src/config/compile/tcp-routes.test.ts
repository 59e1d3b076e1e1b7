// Unit tests for how listeners serve connections (HTTP, TCP, TLS, sniffing) and for compiled tcp[] / tls[] routes.

import { describe, expect, it } from 'vitest'
import { bootstrapSchema } from '../../bootstrap/schema.ts'
import { compileModel } from '../compile.ts'
import { formatMessage } from '../messages.ts'
import type { ListenerModel, Model } from '../model.ts'
import { parseResources } from '../parse-resources.ts'

function compile(yaml: string): Model {
  const b = {
    ...bootstrapSchema.parse({ node: { labels: { app: 'web' } }, protocolDetectionTimeout: '150ms' }),
    file: 'bootstrap.yaml',
  }
  const parsed = parseResources(yaml, 'istio.yaml', 'default')
  expect(parsed.messages.filter((m) => m.severity === 'error').map(formatMessage)).toEqual([])
  return compileModel({ bootstrap: b, resources: parsed.resources, files: [], warnings: [], version: 1 })
}

const egress = (ports: string[]) => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  ingress:
    - {port: {number: 9000, protocol: TCP, name: a}, defaultEndpoint: 127.0.0.1:1000}
    - {port: {number: 9001, name: b}, defaultEndpoint: 127.0.0.1:1001}
    - {port: {number: 3306, name: c}, defaultEndpoint: 127.0.0.1:1002}
    - {port: {number: 9003, protocol: HTTPS, name: d}, defaultEndpoint: 127.0.0.1:1003}
  egress:
${ports.map((p) => `    - {port: ${p}, hosts: ["*/*"]}`).join('\n')}
---
`

const entry = (host: string, ports: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host.split('.')[0]}, namespace: default}
spec:
  hosts: [${host}]
  resolution: STATIC
  ports: ${ports}
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}, {address: 10.0.0.2, labels: {version: v2}}]
${extra}---
`

function listener(model: Model, port: number): ListenerModel {
  const found = model.listeners.find((l) => l.port === port)
  if (found === undefined) throw new Error(`no listener on ${port}`)
  return found
}

describe('how listeners serve connections', () => {
  const model = compile(
    egress([
      '{number: 7001, protocol: TCP}',
      '{number: 7002}',
      '{number: 7003}',
      '{number: 7004}',
      '{number: 7005}',
      '{number: 27017}',
      '{number: 7006, protocol: HTTP}',
    ]) +
      entry('db', '[{number: 7002, name: pg, protocol: TCP}]') +
      entry('web', '[{number: 7003, name: http, protocol: HTTP}, {number: 7004, name: h, protocol: HTTP}]') +
      entry('cache', '[{number: 7004, name: redis, protocol: REDIS}]') +
      entry('api.example.com', '[{number: 7005, name: tls, protocol: TLS}]') +
      entry('mongo', '[{number: 27017, name: m}]'),
  )

  it('takes a declared listener protocol, else the protocol its services declare for the port', () => {
    expect(listener(model, 7001).serve).toBe('tcp')
    expect(listener(model, 7002).serve).toBe('tcp')
    expect(listener(model, 7003).serve).toBe('http')
    expect(listener(model, 7005).serve).toBe('tls')
    expect(listener(model, 7006).serve).toBe('http')
  })

  it('sniffs a port whose services disagree or say nothing, except the server-first ports', () => {
    expect(listener(model, 7004).serve).toBe('detect')
    expect(listener(model, 27017).serve).toBe('tcp')
    expect(listener(model, 7004).protocolDetectionTimeoutMs).toBe(150)
  })

  it('forwards non-HTTP ingress ports as TCP, sniffing only undeclared ones', () => {
    expect([9000, 9001, 3306, 9003].map((p) => listener(model, p).serve)).toEqual([
      'tcp',
      'detect',
      'tcp',
      'tcp',
    ])
    expect(listener(model, 9001).tcpRoutes.tcpRoutes[0].destinations).toEqual([
      { clusterName: 'inbound|9001||', weight: 1 },
    ])
  })

  it('sends TCP to the service on the port, and sniffed TCP to the non-HTTP one', () => {
    const facts = { sni: undefined, destinationAddress: '127.0.0.1' }
    expect(listener(model, 7002).tcpRoutes.matchTcp(facts)?.destinations).toEqual([
      { clusterName: 'outbound|7002||db.default.svc.cluster.local', weight: 1 },
    ])
    expect(listener(model, 7004).tcpRoutes.matchTcp(facts)?.destinations).toEqual([
      { clusterName: 'outbound|7004||cache.default.svc.cluster.local', weight: 1 },
    ])
    expect(model.clusters.has('outbound|7004||cache.default.svc.cluster.local')).toBe(true)
  })

  it('routes TLS by the service names as SNI', () => {
    const tls = listener(model, 7005).tcpRoutes
    expect(tls.matchTls({ sni: 'api.example.com', destinationAddress: undefined })?.name).toBe('default')
    expect(tls.matchTls({ sni: 'other.example.com', destinationAddress: undefined })).toBeUndefined()
    expect(tls.matchTls({ sni: undefined, destinationAddress: undefined })).toBeUndefined()
  })
})

describe('tcp[] and tls[] routes', () => {
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
    - match: [{port: 7002, sourceLabels: {app: not-me}}]
      route: [{destination: {host: db, subset: v2}}]
    - match: [{destinationSubnets: [127.0.0.0/8]}, {port: 7999}]
      route: [{destination: {host: db, subset: v1}}]
    - route:
        - {destination: {host: db, subset: v1}, weight: 3}
        - {destination: {host: db, subset: v2}, weight: 1}
        - {destination: {host: db}, weight: 0}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: tls, namespace: default}
spec:
  hosts: ["*.example.com"]
  tls:
    - match: [{sniHosts: ["*.example.com"]}]
      route: [{destination: {host: api.example.com}}]
    - match: [{sniHosts: [exact.example.com]}]
      route: [{destination: {host: api.example.com, port: {number: 8443}}}]
---
`
  const model = compile(
    egress(['{number: 7002}', '{number: 7005}']) +
      vs +
      entry('db', '[{number: 7002, name: pg, protocol: TCP}]') +
      entry('shadowed', '[{number: 7002, name: pg, protocol: TCP}]') +
      entry('api.example.com', '[{number: 7005, name: tls, protocol: TLS}]'),
  )

  it('keeps the matches that apply to this proxy and port; weights of 0 drop out', () => {
    const table = listener(model, 7002).tcpRoutes
    expect(table.tcpRoutes.map((r) => [r.name, r.destinationSubnets])).toEqual([
      ['default/db tcp[1]', ['127.0.0.0/8']],
      ['default/db tcp[2]', []],
      ['default', []],
    ])
    expect(table.tcpRoutes[1].destinations.map((d) => d.weight)).toEqual([3, 1])
  })

  it('prefers the most specific destination subnet, and IPv4-mapped addresses match IPv4 blocks', () => {
    const table = listener(model, 7002).tcpRoutes
    expect(table.matchTcp({ sni: undefined, destinationAddress: '127.0.0.1' })?.name).toBe(
      'default/db tcp[1]',
    )
    expect(table.matchTcp({ sni: undefined, destinationAddress: '::ffff:127.0.0.1' })?.name).toBe(
      'default/db tcp[1]',
    )
    expect(table.matchTcp({ sni: undefined, destinationAddress: '10.1.1.1' })?.name).toBe('default/db tcp[2]')
  })

  it('warns about a TCP service that cannot be reached because another takes its port', () => {
    expect(model.warnings.map((w) => w.message)).toContainEqual(
      expect.stringContaining(
        'egress[0] port 7002: TCP connections all go to db.default.svc.cluster.local; shadowed.default.svc.cluster.local shares the port',
      ),
    )
  })

  it('matches SNI exactly before the longest wildcard', () => {
    const table = listener(model, 7005).tcpRoutes
    const route = (sni: string) => table.matchTls({ sni, destinationAddress: undefined })
    expect(route('exact.example.com')?.destinations).toEqual([
      { clusterName: 'outbound|8443||api.example.com', weight: 1 },
    ])
    expect(route('any.example.com')?.destinations).toEqual([
      { clusterName: 'outbound|7005||api.example.com', weight: 1 },
    ])
    expect(route('example.org')).toBeUndefined()
  })
})
