// Scenario: the outbound routing matrix of VirtualService http[] through a real proxy process.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Echoed, echoed, send, sendRaw } from './harness/client.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { answerAfter, startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let v1: Upstream
let v2: Upstream
let slow: Upstream
let closedPort: number

beforeAll(async () => {
  v1 = await startUpstream('v1')
  v2 = await startUpstream('v2')
  slow = await startUpstream('slow', answerAfter(2_000, 'late'))
  ;[egress, closedPort] = await freePorts(2)
  proxy = await startProxy({
    labels: { app: 'productpage', version: 'v1' },
    resources: {
      'sidecar.yaml': istio.sidecar({
        egress: [{ port: egress, protocol: 'HTTP', name: 'http', hosts: ['./*', 'other/*'] }],
      }),
      'services.yaml': istio.yamlStream(
        istio.serviceEntry({
          name: 'reviews',
          hosts: ['reviews.default.svc.cluster.local'],
          ports: [{ number: egress, name: 'http', protocol: 'HTTP' }],
          endpoints: istio.versionEndpoints('http', { v1: v1.port, v2: v2.port }),
        }),
        istio.loopbackService('plain', 9080, v1.port),
        istio.serviceEntry({
          name: 'ratings',
          namespace: 'other',
          hosts: ['ratings.other.svc.cluster.local'],
          ports: [{ number: 9080, name: 'http', protocol: 'HTTP' }],
          endpoints: [{ address: '127.0.0.1', ports: { http: v2.port } }],
        }),
        istio.loopbackService('broken', 80, closedPort),
        istio.loopbackService('slow', 80, slow.port),
        istio.destinationRule({ host: 'reviews', subsets: istio.versionSubsets('v1', 'v2', 'v3') }),
      ),
      'virtual-services.yaml': istio.yamlStream(
        `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
    - name: jason
      match:
        - headers: {end-user: {exact: jason}}
      route: [{destination: {host: reviews, subset: v2}}]
    - name: not-debug
      match:
        - uri: {prefix: /nodebug}
          withoutHeaders: {x-debug: {}}
      route: [{destination: {host: reviews, subset: v2}}]
      headers:
        response: {set: {x-route: not-debug}}
    - name: query
      match:
        - queryParams: {flavour: {exact: mint}}
      route: [{destination: {host: reviews, subset: v2}}]
    - name: exact
      match:
        - uri: {exact: /exact}
      route: [{destination: {host: reviews, subset: v2}}]
    - name: regex
      match:
        - uri: {regex: '/items/[0-9]+'}
      route: [{destination: {host: reviews, subset: v2}}]
    - name: ignore-case
      match:
        - uri: {prefix: /CaSe}
          ignoreUriCase: true
      route: [{destination: {host: reviews, subset: v2}}]
    - name: method
      match:
        - method: {exact: DELETE}
      directResponse: {status: 405, body: {string: "no deletes"}}
    - name: authority
      match:
        - authority: {prefix: reviews.default}
          uri: {prefix: /authority}
      route: [{destination: {host: reviews, subset: v2}}]
    - name: source-labels-miss
      match:
        - sourceLabels: {app: someone-else}
      directResponse: {status: 418}
    - name: source-labels-hit
      match:
        - sourceLabels: {app: productpage}
          uri: {prefix: /from-productpage}
      directResponse: {status: 200, body: {string: "hello productpage"}}
    - name: rewrite-prefix
      match:
        - uri: {prefix: /old/}
      rewrite: {uri: /new/, authority: rewritten.example}
      route: [{destination: {host: reviews, subset: v1}}]
    - name: rewrite-regex
      match:
        - uri: {prefix: /rx/}
      rewrite:
        uriRegexRewrite: {match: '^/rx/([a-z]+)/([0-9]+)$', rewrite: '/\\2/\\1'}
      route: [{destination: {host: reviews, subset: v1}}]
    - name: redirect
      match:
        - uri: {exact: /moved}
      redirect: {uri: /elsewhere, authority: new.example:8443, scheme: https}
    - name: redirect-code
      match:
        - uri: {exact: /temp}
      redirect: {uri: /tmp, redirectCode: 307}
    - name: headers
      match:
        - uri: {prefix: /headers}
      headers:
        request:
          set: {x-set: set-value}
          add: {x-added: added}
          remove: [x-remove-me]
        response:
          set: {x-response-set: yes}
          remove: [x-upstream]
      route:
        - destination: {host: reviews, subset: v1}
          headers:
            request: {set: {x-dest: v1}}
            response: {add: {x-dest-response: v1}}
    - name: no-subset-endpoints
      match:
        - uri: {prefix: /v3}
      route: [{destination: {host: reviews, subset: v3}}]
    - name: unknown-subset
      match:
        - uri: {prefix: /nosuchsubset}
      route: [{destination: {host: reviews, subset: nope}}]
    - name: cross-namespace
      match:
        - uri: {prefix: /ratings}
      route: [{destination: {host: ratings.other.svc.cluster.local, port: {number: 9080}}}]
    - name: split
      match:
        - uri: {prefix: /split}
      route:
        - {destination: {host: reviews, subset: v1}, weight: 25}
        - {destination: {host: reviews, subset: v2}, weight: 75}
    - name: only-unknown
      match:
        - uri: {prefix: /nowhere}
          port: 1
      route: [{destination: {host: reviews, subset: v2}}]
    - name: fallback
      route: [{destination: {host: reviews, subset: v1}}]
`,
        istio.virtualService({
          hosts: ['plain'],
          http: [
            { match: [{ uri: { exact: '/only' } }, { uri: { exact: '/p' } }], route: istio.routeTo('plain') },
          ],
        }),
        istio.virtualService({ hosts: ['slow'], http: [{ route: istio.routeTo('slow'), timeout: '0.5s' }] }),
      ),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([v1?.close(), v2?.close(), slow?.close()])
})

describe('host names', () => {
  it.each([
    'reviews',
    'reviews.default',
    'reviews.default.svc',
    'reviews.default.svc.cluster.local',
    'REVIEWS.default.svc.cluster.local',
  ])('routes Host %s to the service', async (host) => {
    const reply = await send(egress, host, '/anything')
    expect(reply.status).toBe(200)
    expect(echoed(reply).name).toBe('v1')
  })

  it('routes Host with the port', async () => {
    const reply = await send(egress, `reviews:${egress}`, '/anything')
    expect(echoed(reply).name).toBe('v1')
    expect(echoed(reply).headers.host).toBe(`reviews:${egress}`)
  })

  it('uses a service port other than the listener port when the Host carries it', async () => {
    const reply = await send(egress, 'plain:9080', '/p')
    expect(reply.status).toBe(200)
    expect(echoed(reply).name).toBe('v1')
  })

  it('routes a service with a single port by its bare name, no VirtualService: default route', async () => {
    const reply = await send(egress, 'plain', '/p')
    expect(echoed(reply).url).toBe('/p')
  })

  it('answers 404 NR for an unknown host', async () => {
    const reply = await send(egress, 'nosuch.example.com', '/')
    expect(reply.status).toBe(404)
    expect(reply.body).toBe('')
  })

  it('reaches another namespace by FQDN, and not by short name', async () => {
    expect(echoed(await send(egress, 'ratings.other.svc.cluster.local:9080', '/')).name).toBe('v2')
    expect((await send(egress, 'ratings', '/')).status).toBe(404)
    expect(echoed(await send(egress, 'ratings.other:9080', '/')).name).toBe('v2')
  })
})

describe('match conditions', () => {
  it('headers: exact', async () => {
    expect(echoed(await send(egress, 'reviews', '/', { headers: { 'end-user': 'jason' } })).name).toBe('v2')
    expect(echoed(await send(egress, 'reviews', '/', { headers: { 'end-user': 'json' } })).name).toBe('v1')
  })

  it('withoutHeaders: matches only when the header is absent', async () => {
    const without = await send(egress, 'reviews', '/nodebug')
    expect(echoed(without).name).toBe('v2')
    expect(without.headers['x-route']).toBe('not-debug')
    expect(echoed(await send(egress, 'reviews', '/nodebug', { headers: { 'x-debug': '1' } })).name).toBe('v1')
  })

  it('queryParams: exact', async () => {
    expect(echoed(await send(egress, 'reviews', '/?flavour=mint&x=1')).name).toBe('v2')
    expect(echoed(await send(egress, 'reviews', '/?flavour=mintx')).name).toBe('v1')
  })

  it('uri: exact, regex (whole path), and prefix with ignoreUriCase', async () => {
    expect(echoed(await send(egress, 'reviews', '/exact')).name).toBe('v2')
    expect(echoed(await send(egress, 'reviews', '/exact/more')).name).toBe('v1')
    expect(echoed(await send(egress, 'reviews', '/items/42')).name).toBe('v2')
    expect(echoed(await send(egress, 'reviews', '/items/42x')).name).toBe('v1')
    expect(echoed(await send(egress, 'reviews', '/items/42?q=1')).name).toBe('v2')
    expect(echoed(await send(egress, 'reviews', '/case/sensitive')).name).toBe('v2')
    expect(echoed(await send(egress, 'reviews', '/CASE')).name).toBe('v2')
  })

  it('method', async () => {
    const reply = await send(egress, 'reviews', '/', { method: 'DELETE' })
    expect(reply.status).toBe(405)
    expect(reply.body).toBe('no deletes')
  })

  it('authority', async () => {
    expect(echoed(await send(egress, 'reviews.default.svc.cluster.local', '/authority')).name).toBe('v2')
    expect(echoed(await send(egress, 'reviews', '/authority')).name).toBe('v1')
  })

  it('sourceLabels select the routes for this workload only', async () => {
    expect((await send(egress, 'reviews', '/')).status).toBe(200)
    const hit = await send(egress, 'reviews', '/from-productpage')
    expect(hit.body).toBe('hello productpage')
  })

  it('port: a match for another port never applies', async () => {
    expect(echoed(await send(egress, 'reviews', '/nowhere')).name).toBe('v1')
  })
})

describe('actions', () => {
  it('rewrite: prefix and authority', async () => {
    const e = echoed(await send(egress, 'reviews', '/old/page?x=1'))
    expect(e.url).toBe('/new/page?x=1')
    expect(e.headers.host).toBe('rewritten.example')
    expect(e.headers['x-envoy-original-path']).toBe('/old/page')
  })

  it('rewrite: uriRegexRewrite with groups', async () => {
    expect(echoed(await send(egress, 'reviews', '/rx/abc/123')).url).toBe('/123/abc')
  })

  it('redirect: 301 with scheme, authority and uri', async () => {
    const reply = await send(egress, 'reviews', '/moved?q=1')
    expect(reply.status).toBe(301)
    expect(reply.headers.location).toBe('https://new.example:8443/elsewhere?q=1')
  })

  it('redirect: redirectCode, keeping the request host', async () => {
    const reply = await send(egress, `reviews:${egress}`, '/temp')
    expect(reply.status).toBe(307)
    expect(reply.headers.location).toBe(`http://reviews:${egress}/tmp`)
  })

  it('header edits on route and destination, request and response', async () => {
    const reply = await send(egress, 'reviews', '/headers', {
      headers: { 'x-remove-me': '1', 'x-added': 'first' },
    })
    const e = echoed(reply)
    expect(e.headers['x-set']).toBe('set-value')
    expect(e.headers['x-added']).toBe('first, added')
    expect(e.headers['x-remove-me']).toBeUndefined()
    expect(e.headers['x-dest']).toBe('v1')
    expect(reply.headers['x-response-set']).toBe('yes')
    expect(reply.headers['x-upstream']).toBeUndefined()
    expect(reply.headers['x-dest-response']).toBe('v1')
  })

  it('weighted split 25/75 over 400 requests', async () => {
    const counts: Record<string, number> = { v1: 0, v2: 0 }
    for (let i = 0; i < 400; i++) counts[echoed(await send(egress, 'reviews', '/split')).name]++
    // Binomial(400, 0.25): mean 100, sd 8.7; ±45 is over 5 sd.
    expect(counts.v1).toBeGreaterThan(55)
    expect(counts.v1).toBeLessThan(145)
    expect(counts.v1 + counts.v2).toBe(400)
  })
})

describe('failures as Envoy reports them', () => {
  it('404 NR when the virtual host has no matching route', async () => {
    expect(echoed(await send(egress, 'plain:9080', '/only')).name).toBe('v1')
    const reply = await send(egress, 'plain:9080', '/other')
    expect(reply.status).toBe(404)
    expect(reply.body).toBe('')
  })

  it('503 UH when the subset has no endpoints', async () => {
    const reply = await send(egress, 'reviews', '/v3')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe('no healthy upstream')
  })

  it('503 NC when the subset is not defined', async () => {
    const reply = await send(egress, 'reviews', '/nosuchsubset')
    expect(reply.status).toBe(503)
  })

  it('503 UF when the upstream refuses the connection', async () => {
    const reply = await send(egress, 'broken', '/')
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(
      'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
    )
  })

  it('504 UT when the route timeout fires first', async () => {
    const started = Date.now()
    const reply = await send(egress, 'slow', '/')
    const took = Date.now() - started
    expect(reply.status).toBe(504)
    expect(reply.body).toBe('upstream request timeout')
    expect(took).toBeGreaterThanOrEqual(450)
    expect(took).toBeLessThan(1_900)
  })
})

describe('forwarded headers', () => {
  it('keeps x-forwarded-for, adds x-forwarded-proto and x-request-id; strips hop-by-hop', async () => {
    const raw = await sendRaw(
      egress,
      'GET /fwd HTTP/1.1\r\nHost: reviews\r\nConnection: x-hop, keep-alive\r\nX-Hop: secret\r\n' +
        'Keep-Alive: timeout=5\r\nX-Forwarded-For: 10.1.1.1\r\nTE: gzip\r\nProxy-Connection: keep-alive\r\n\r\n',
    )
    const e = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Echoed
    expect(e.headers['x-forwarded-for']).toBe('10.1.1.1')
    expect(e.headers['x-forwarded-proto']).toBe('http')
    expect(e.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expect(e.headers['x-hop']).toBeUndefined()
    expect(e.headers['keep-alive']).toBeUndefined()
    expect(e.headers.te).toBeUndefined()
    expect(e.headers['proxy-connection']).toBeUndefined()
  })

  it('keeps a client x-request-id', async () => {
    const e = echoed(await send(egress, 'reviews', '/', { headers: { 'x-request-id': 'abc-123' } }))
    expect(e.headers['x-request-id']).toBe('abc-123')
  })
})
