// Unit tests for compiling resources + bootstrap into a Model, with the mistakes users make.

import { describe, expect, it } from 'vitest'
import { type Bootstrap, bootstrapSchema } from '../bootstrap/schema.ts'
import { compileModel } from './compile.ts'
import { hostAliases, toFqdn } from './hosts.ts'
import { ConfigError } from './messages.ts'
import type { Model } from './model.ts'
import { parseResources } from './parse-resources.ts'

function bootstrap(over: Record<string, unknown> = {}): Bootstrap {
  return {
    ...bootstrapSchema.parse({ node: { labels: { app: 'productpage' } }, ...over }),
    file: 'bootstrap.yaml',
  }
}

function compile(yaml: string, b = bootstrap()): Model {
  const parsed = parseResources(yaml, 'istio.yaml', b.node.namespace)
  const errors = parsed.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0) throw new ConfigError(errors)
  return compileModel({ bootstrap: b, resources: parsed.resources, files: [], warnings: [], version: 1 })
}

const sidecar = (spec: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
${spec}
${extra}
`

const services = `---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}]
  endpoints:
    - {address: 10.0.0.1, labels: {version: v1}}
    - {address: 10.0.0.2, ports: {http: 19080}, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ratings, namespace: other}
spec:
  hosts: [ratings]
  resolution: STATIC
  ports: [{number: 9080, name: http}]
  endpoints: [{address: 10.0.1.1}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: hidden, namespace: other}
spec:
  hosts: [hidden]
  exportTo: ["."]
  ports: [{number: 9080, name: http}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews.default.svc.cluster.local
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`

describe('host names', () => {
  it('expands short names in a namespace', () => {
    expect(toFqdn('reviews', 'default')).toBe('reviews.default.svc.cluster.local')
    expect(toFqdn('reviews.default', 'default')).toBe('reviews.default.svc.cluster.local')
    expect(toFqdn('reviews.other.svc', 'default')).toBe('reviews.other.svc.cluster.local')
    expect(toFqdn('api.example.com', 'default')).toBe('api.example.com')
    expect(toFqdn('*.example.com', 'default')).toBe('*.example.com')
  })

  it('lists the names a client may use', () => {
    expect(hostAliases('reviews.default.svc.cluster.local', 'default')).toEqual([
      'reviews.default.svc.cluster.local',
      'reviews.default.svc',
      'reviews.default',
      'reviews',
    ])
    expect(hostAliases('reviews.other.svc.cluster.local', 'default')).not.toContain('reviews')
  })
})

describe('compileModel', () => {
  it('builds clusters per service port and subset, with endpoint port overrides', () => {
    const model = compile(sidecar('  egress: [{port: {number: 15001}, hosts: ["*/*"]}]') + services)
    const c = (name: string) => model.clusters.get(name)
    expect(
      c('outbound|9080||reviews.default.svc.cluster.local')?.endpoints.map((e) => `${e.address}:${e.port}`),
    ).toEqual(['10.0.0.1:9080', '10.0.0.2:19080'])
    expect(c('outbound|9080|v2|reviews.default.svc.cluster.local')?.endpoints.map((e) => e.address)).toEqual([
      '10.0.0.2',
    ])
    expect(c('outbound|9090|v1|reviews.default.svc.cluster.local')?.endpoints.map((e) => e.port)).toEqual([
      9090,
    ])
    // TCP ports get clusters too (opaque TCP proxying).
    expect(c('outbound|5432||db.default.svc.cluster.local')?.protocol).toBe('TCP')
    // exportTo "." keeps a service inside its namespace.
    expect(c('outbound|9080||hidden.other.svc.cluster.local')).toBeUndefined()
  })

  it('egress hosts select which services a listener routes to', () => {
    const model = compile(
      sidecar('  egress: [{port: {number: 15001}, bind: 127.0.0.2, hosts: ["./*"]}]') + services,
    )
    const [listener] = model.listeners
    expect(listener.address).toBe('127.0.0.2')
    expect(listener.routeTable.lookup('reviews:9080')).toBeDefined()
    expect(listener.routeTable.lookup('ratings.other.svc.cluster.local:9080')).toBeUndefined()
  })

  it('ingress listeners forward to the default endpoint (0.0.0.0 meaning loopback)', () => {
    const model = compile(
      sidecar(`  ingress:
    - {port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: "0.0.0.0:8080"}
    - {port: {number: 9081, protocol: HTTP, name: http2}, bind: 127.0.0.1}`),
    )
    expect(model.listeners.map((l) => `${l.direction} ${l.name}`)).toEqual([
      'inbound 0.0.0.0_9080',
      'inbound 127.0.0.1_9081',
    ])
    expect(model.clusters.get('inbound|9080||')?.endpoints[0]).toMatchObject({
      address: '127.0.0.1',
      port: 8080,
    })
    expect(model.clusters.get('inbound|9081||')?.endpoints[0]).toMatchObject({
      address: '127.0.0.1',
      port: 9081,
    })
  })

  it('rejects two listeners on one port, with the line of the second', () => {
    const yaml = sidecar(`  ingress:
    - {port: {number: 9080, name: a}}
    - {port: {number: 9080, name: b}}`)
    expect(() => compile(yaml)).toThrow(/^istio.yaml:7: .*9080/)
  })

  it('rejects a listener on the admin or health port', () => {
    const yaml = sidecar(`  ingress:
    - {port: {number: 9080, name: a}}
    - {port: {number: 15021, name: c}}`)
    expect(() => compile(yaml)).toThrow(
      /^istio.yaml:7: port 15021 of ingress\[1\] is already used by the health listener/,
    )
  })

  it('rejects a defaultEndpoint that is not ip:port', () => {
    expect(() =>
      compile(
        sidecar('  ingress: [{port: {number: 9080, name: a}, defaultEndpoint: "unix:///var/run/app.sock"}]'),
      ),
    ).toThrow(
      /istio.yaml:5: defaultEndpoint unix:\/\/\/var\/run\/app.sock: unix domain sockets are not supported yet/,
    )
  })

  it('prefers a Sidecar whose workloadSelector matches this workload', () => {
    const yaml = `${sidecar('  egress: [{port: {number: 1001}, hosts: ["./*"]}]')}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: mine, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  egress: [{port: {number: 1002}, hosts: ["./*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: theirs, namespace: default}
spec:
  workloadSelector: {labels: {app: other}}
  egress: [{port: {number: 1003}, hosts: ["./*"]}]
`
    expect(compile(yaml).listeners.map((l) => l.port)).toEqual([1002])
  })

  it('warns when no Sidecar selects the workload', () => {
    const model = compile(services)
    expect(model.listeners).toEqual([])
    expect(model.warnings.map((w) => w.message).join()).toMatch(/no Sidecar resource selects workload/)
  })

  it('a VirtualService replaces the default route; its destinations name subset clusters', () => {
    const model = compile(
      `${sidecar('  egress: [{port: {number: 9080}, hosts: ["*/*"]}]') + services}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - match: [{uri: {prefix: /a}}, {uri: {prefix: /b}, port: 9090}]
      route: [{destination: {host: reviews, subset: v2}, weight: 100}]
`,
    )
    const table = model.listeners[0].routeTable
    const http = table.lookup('reviews')
    expect(http?.name).toBe('reviews.default.svc.cluster.local:9080')
    expect(http?.routes).toHaveLength(1)
    const forward = http?.routes[0].action
    expect(forward?.kind === 'forward' && forward.destinations[0].clusterName).toBe(
      'outbound|9080|v2|reviews.default.svc.cluster.local',
    )
    const grpc = table.lookup('reviews:9090')
    expect(grpc?.routes).toHaveLength(2)
    const other = table.lookup('ratings.other:9080')
    expect(other?.routes[0].name).toBe('default')
  })
})

describe('outbound policy and leftovers', () => {
  it('REGISTRY_ONLY answers unknown hosts with a direct 502 (block_all)', () => {
    const model = compile(
      sidecar(
        '  egress: [{port: {number: 9080}, hosts: ["./*"]}]',
        '  outboundTrafficPolicy: {mode: REGISTRY_ONLY}',
      ) + services,
    )
    const table = model.listeners[0].routeTable
    expect(table.lookup('reviews')?.name).toBe('reviews.default.svc.cluster.local:9080')
    const blocked = table.lookup('www.example.com')
    expect(blocked?.name).toBe('block_all')
    expect(blocked?.routes[0].action).toEqual({ kind: 'direct', status: 502 })
  })

  it("adds the service's addresses to its virtual hosts, with and without the port (pilot generateVirtualHostDomains)", () => {
    const model = compile(
      `${sidecar('  egress: [{port: {number: 9080}, hosts: ["./*"]}]')}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  addresses: [10.96.0.10, "2001:DB8::10", 10.97.0.0/16, 10.98.0.1/32]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}]
  endpoints: [{address: 10.0.0.1}]
`,
    )
    const table = model.listeners[0].routeTable
    const http = 'reviews.default.svc.cluster.local:9080'
    expect(table.lookup('10.96.0.10:9080')?.name).toBe(http)
    // Without a port, the address means the listener's port, as the service's names do.
    expect(table.lookup('10.96.0.10')?.name).toBe(http)
    expect(table.lookup('10.96.0.10:9090')?.name).toBe('reviews.default.svc.cluster.local:9090')
    expect(table.lookup('[2001:db8::10]:9080')?.name).toBe(http)
    expect(table.lookup('10.98.0.1:9080')?.name).toBe(http)
    // A CIDR names no host; an address the service does not have finds nothing.
    expect(table.lookup('10.97.0.0/16:9080')).toBeUndefined()
    expect(table.lookup('10.96.0.11:9080')).toBeUndefined()
  })

  it('warns about what standalone mode cannot use: ALLOW_ANY, VIP addresses, unix endpoints', () => {
    const model = compile(
      `${sidecar('  egress: [{port: {number: 9080}, hosts: ["./*"]}]', '  outboundTrafficPolicy: {mode: ALLOW_ANY}')}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: local, namespace: default}
spec:
  hosts: [local]
  addresses: [10.9.9.9]
  ports: [{number: 9080, name: http}]
  resolution: STATIC
  endpoints: [{address: "unix:///var/run/app.sock"}, {address: 127.0.0.1}]
`,
    )
    const text = model.warnings.map((w) => `${w.line}: ${w.message}`).join('\n')
    expect(text).toMatch(/^6: outboundTrafficPolicy ALLOW_ANY/m)
    expect(text).toMatch(/^13: addresses match captured traffic/m)
    expect(text).toMatch(
      /^16: endpoint unix:\/\/\/var\/run\/app.sock: unix domain socket endpoints are not supported yet/m,
    )
    expect(model.clusters.get('outbound|9080||local.default.svc.cluster.local')?.endpoints).toHaveLength(1)
  })
})
