// Unit tests for explain on compiled models: the listener under capture and standalone, the virtual host's reason, clusters that do not exist, match blocks left out.

import { describe, expect, it } from 'vitest'
import { type Bootstrap, bootstrapSchema } from '../bootstrap/schema.ts'
import { compileModel } from '../config/compile.ts'
import { ConfigError } from '../config/messages.ts'
import type { Model } from '../config/model.ts'
import { parseResources } from '../config/parse-resources.ts'
import { explain } from './explain.ts'
import { explainQuery } from './explain-query.ts'
import { formatExplanation } from './explain-text.ts'

const services = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.10]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
  subsets: [{name: v1, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - name: other-workloads
      match: [{sourceLabels: {app: someone-else}}]
      directResponse: {status: 418}
    - name: two-blocks
      match: [{uri: {prefix: /a}}, {sourceNamespace: elsewhere}, {uri: {prefix: /b}}]
      route: [{destination: {host: reviews, subset: v1}}]
    - name: nope
      match: [{uri: {prefix: /nope}}]
      route: [{destination: {host: reviews, subset: nope}}]
    - route: [{destination: {host: reviews, subset: v1}}]
`

function compile(yaml: string, over: Record<string, unknown>): Model {
  const bootstrap: Bootstrap = {
    ...bootstrapSchema.parse({ node: { labels: { app: 'productpage' } }, ...over }),
    file: 'b.yaml',
  }
  const parsed = parseResources(yaml, 'istio.yaml', 'default')
  const errors = parsed.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0) throw new ConfigError(errors)
  return compileModel({ bootstrap, resources: parsed.resources, files: [], warnings: [], version: 1 })
}

const captured = compile(services, { capture: 'iptables' })

describe('explain under capture', () => {
  it('takes the virtual listener of the original destination port, and says why the virtual host matched', () => {
    const e = explain(captured, explainQuery({ authority: 'reviews:9080', path: '/b' }))
    expect(e.listener).toMatchObject({
      found: true,
      name: '0.0.0.0_9080',
      capturedBy: 'virtualOutbound',
      port: 9080,
    })
    expect(e.virtualHost?.why).toContain('a short name of reviews.default.svc.cluster.local')
    const fqdn = explain(captured, explainQuery({ authority: 'reviews.default.svc.cluster.local:9080' }))
    expect(fqdn.virtualHost?.why).toContain('the fully qualified name')
    const vip = explain(captured, explainQuery({ authority: '10.96.0.10:9080' }))
    expect(vip.virtualHost?.why).toContain('a service address')
  })

  it('lists the match blocks the compiler left out, in place, and the block that matched', () => {
    const e = explain(captured, explainQuery({ authority: 'reviews:9080', path: '/b' }))
    expect(e.routes.map((r) => [r.http, r.match, r.matched])).toEqual([
      [1, 0, false],
      [1, 2, true],
    ])
    expect(e.leftOut.map((l) => [l.http, l.match])).toEqual([
      [0, null],
      [1, 1],
    ])
    const text = formatExplanation(e)
    expect(text.indexOf('- http[0]:')).toBeLessThan(text.indexOf('✗ http[1] match[0]'))
    expect(text.indexOf('- http[1] match[1]:')).toBeLessThan(text.indexOf('✓ http[1] match[2]'))
    expect(e.clusters[0]).toMatchObject({
      loadBalancer: 'RING_HASH (hash on header x-user)',
      health: 'not known offline',
    })
  })

  it('says when a destination names a cluster that does not exist (503 NC)', () => {
    const e = explain(captured, explainQuery({ authority: 'reviews:9080', path: '/nope' }))
    expect(e.clusters).toEqual([
      expect.objectContaining({
        defined: false,
        name: 'outbound|9080|nope|reviews.default.svc.cluster.local',
      }),
    ])
    expect(e.clusters[0].health).toContain('503 NC')
  })

  it('a port no service has goes to the passthrough, or the blackhole under REGISTRY_ONLY', () => {
    const e = explain(captured, explainQuery({ authority: 'db:5432' }))
    expect(e.listener).toMatchObject({ found: true, name: 'virtualOutbound' })
    expect(e.action).toEqual({
      kind: 'tcp',
      routes: [{ name: 'PassthroughCluster', clusters: ['PassthroughCluster'] }],
    })
    const registryOnly = compile(
      `${services}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec: {outboundTrafficPolicy: {mode: REGISTRY_ONLY}}
`,
      { capture: 'iptables' },
    )
    const blocked = explain(registryOnly, explainQuery({ authority: 'db:5432' }))
    expect(blocked.action).toEqual({
      kind: 'tcp',
      routes: [{ name: 'BlackHoleCluster', clusters: ['BlackHoleCluster'] }],
    })
  })

  it("never passes traffic to the proxy's own ports", () => {
    const e = explain(captured, explainQuery({ authority: 'localhost:15000' }))
    expect(e.listener.found).toBe(false)
    expect(e.outcome).toContain("one of the proxy's own ports")
  })
})

describe('explain standalone', () => {
  const standalone = compile(
    `${services}---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec: {egress: [{port: {number: 15001, protocol: HTTP, name: http}, hosts: ["./*"]}]}
`,
    {},
  )

  it('takes the egress listener whatever port the authority names, and refuses a port nothing listens on', () => {
    const e = explain(standalone, explainQuery({ authority: 'reviews:9080', path: '/a' }))
    expect(e.listener).toMatchObject({ found: true, port: 15001, capturedBy: null })
    expect(e.routes.at(-1)).toMatchObject({ name: 'two-blocks', matched: true })
    const none = explain(standalone, explainQuery({ authority: 'reviews:9080', port: '8080' }))
    expect(none.listener.found).toBe(false)
    expect(none.outcome).toContain('refused')
  })
})
