// Scenario: Envoy-style proxy stats (cluster, listener, HTTP connection manager, server) on admin /stats and /stats/prometheus, counted exactly after known traffic.
//
// Names and semantics follow Envoy's docs ("Cluster manager statistics", "Listener statistics", "HTTP
// connection manager statistics") and source/common/router/router.cc (chargeUpstreamCode: the forwarded
// response and the router's 503/504 for an upstream failure count under upstream_rq_<code>; a response
// dropped for a retry counts under retry.upstream_rq_<code>); the Prometheus labels follow Istio's
// bootstrap stats_tags (cluster_name, response_code, response_code_class, listener_address).

import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Reply, send } from './harness/client.ts'
import { routeTo, serviceWithPolicy, sidecar, staticService, virtualService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { answerAfter, type Handler, startUpstream, type Upstream } from './harness/upstream.ts'

const status =
  (code: number): Handler =>
  (req, res) => {
    req.resume()
    res.writeHead(code)
    res.end(`status ${code}`)
  }

/** 503 to a first try, 200 to a retried one (x-envoy-attempt-count > 1). */
const failOnce: Handler = (req, res) =>
  status(req.headers['x-envoy-attempt-count'] === '1' ? 503 : 200)(req, res)

const held: ServerResponse[] = []
const hold: Handler = (req, res) => {
  req.resume()
  held.push(res)
}

let proxy: ProxyProcess
let egress: number
let closedPort: number
const upstreams: Upstream[] = []
const cluster = (name: string): string => `cluster.outbound|80||${name}.default.svc.cluster.local`
const endpoint = (u: Upstream): string => `{address: 127.0.0.1, ports: {http: ${u.port}}}`

beforeAll(async () => {
  const ok = await startUpstream('ok', status(200))
  const fail = await startUpstream('fail', status(503))
  const flip = await startUpstream('flip', failOnce)
  const queued = await startUpstream('queued', hold)
  const down1 = await startUpstream('down1', status(503))
  const down2 = await startUpstream('down2', status(503))
  const slow = await startUpstream('slow', answerAfter(1_000, 'late'))
  upstreams.push(ok, fail, flip, queued, down1, down2, slow)
  ;[egress, closedPort] = await freePorts(2)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({ egress: [{ port: egress, protocol: 'HTTP' }] }),
      'services.yaml': [
        staticService('ok', [endpoint(ok)]),
        staticService('fail', [endpoint(fail)]),
        virtualService({
          hosts: ['fail'],
          http: [{ retries: { attempts: 2, retryOn: '5xx' }, route: routeTo('fail') }],
        }),
        staticService('flip', [endpoint(flip)]),
        virtualService({
          hosts: ['flip'],
          http: [{ retries: { attempts: 2, retryOn: '5xx' }, route: routeTo('flip') }],
        }),
        serviceWithPolicy(
          'queued',
          [endpoint(queued)],
          '    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}\n',
        ),
        serviceWithPolicy(
          'down',
          [endpoint(down1), endpoint(down2)],
          '    loadBalancer: {simple: ROUND_ROBIN}\n    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 1m, maxEjectionPercent: 100}\n',
        ),
        virtualService({ hosts: ['down'], http: [{ retries: { attempts: 0 }, route: routeTo('down') }] }),
        staticService('slow', [endpoint(slow)]),
        virtualService({ hosts: ['slow'], http: [{ timeout: '100ms', route: routeTo('slow') }] }),
        staticService('refused', [`{address: 127.0.0.1, ports: {http: ${closedPort}}}`]),
        virtualService({
          hosts: ['refused'],
          http: [{ retries: { attempts: 0 }, route: routeTo('refused') }],
        }),
      ].join('---\n'),
    },
  })
})

afterAll(async () => {
  for (const res of held.splice(0)) res.end()
  await proxy?.stop()
  await Promise.all(upstreams.map((u) => u.close()))
})

/** Admin /stats as a name → value map (Envoy's `name: value` lines). */
async function stats(query = ''): Promise<Map<string, number>> {
  const text = await (await proxy.admin(`/stats${query}`)).text()
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const at = line.lastIndexOf(': ')
    map.set(line.slice(0, at), Number(line.slice(at + 2)))
  }
  return map
}

async function stat(name: string): Promise<number | undefined> {
  return (await stats()).get(name)
}

describe('cluster stats', () => {
  it('counts a 2xx response, its try and its one keep-alive connection', async () => {
    for (let i = 0; i < 3; i++) expect((await send(egress, 'ok')).status).toBe(200)
    const s = await stats()
    const c = cluster('ok')
    expect(s.get(`${c}.upstream_rq_total`)).toBe(3)
    expect(s.get(`${c}.upstream_rq_completed`)).toBe(3)
    expect(s.get(`${c}.upstream_rq_2xx`)).toBe(3)
    expect(s.get(`${c}.upstream_rq_200`)).toBe(3)
    expect(s.get(`${c}.upstream_rq_5xx`)).toBe(0)
    expect(s.get(`${c}.upstream_cx_total`)).toBe(1)
    expect(s.get(`${c}.upstream_cx_active`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_active`)).toBe(0)
    expect(s.get(`${c}.membership_total`)).toBe(1)
    expect(s.get(`${c}.membership_healthy`)).toBe(1)
  })

  it('counts a 503 retried to the limit: two dropped tries under retry., the last one forwarded (URX)', async () => {
    const reply = await send(egress, 'fail')
    expect(reply.status).toBe(503)
    const s = await stats()
    const c = cluster('fail')
    expect(s.get(`${c}.upstream_rq_total`)).toBe(3)
    expect(s.get(`${c}.upstream_rq_retry`)).toBe(2)
    expect(s.get(`${c}.upstream_rq_retry_limit_exceeded`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_retry_success`)).toBe(0)
    expect(s.get(`${c}.retry.upstream_rq_503`)).toBe(2)
    expect(s.get(`${c}.retry.upstream_rq_5xx`)).toBe(2)
    expect(s.get(`${c}.upstream_rq_503`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_5xx`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_completed`)).toBe(1)
  })

  it('counts a retry that succeeds', async () => {
    expect((await send(egress, 'flip')).status).toBe(200)
    const s = await stats()
    const c = cluster('flip')
    expect(s.get(`${c}.upstream_rq_total`)).toBe(2)
    expect(s.get(`${c}.upstream_rq_retry`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_retry_success`)).toBe(1)
    expect(s.get(`${c}.retry.upstream_rq_503`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_200`)).toBe(1)
    expect(s.has(`${c}.upstream_rq_503`)).toBe(false)
  })

  it('counts a connect failure as upstream_cx_connect_fail and the 503 the router answers', async () => {
    const reply = await send(egress, 'refused')
    expect(reply.status).toBe(503)
    const s = await stats()
    const c = cluster('refused')
    expect(s.get(`${c}.upstream_cx_connect_fail`)).toBe(1)
    expect(s.get(`${c}.upstream_cx_active`)).toBe(0)
    expect(s.get(`${c}.upstream_rq_503`)).toBe(1)
  })

  it('counts a route timeout and the 504 the router answers for it', async () => {
    expect((await send(egress, 'slow')).status).toBe(504)
    const s = await stats()
    const c = cluster('slow')
    expect(s.get(`${c}.upstream_rq_timeout`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_504`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_5xx`)).toBe(1)
  })

  it('shows active, pending and the pending overflow while the circuit breaker trips', async () => {
    const c = cluster('queued')
    const replies = [send(egress, 'queued'), send(egress, 'queued')]
    await eventually(async () => held.length === 1 && (await stat(`${c}.upstream_rq_pending_active`)) === 1)
    const overflow: Reply = await send(egress, 'queued')
    expect(overflow.status).toBe(503)
    let s = await stats()
    expect(s.get(`${c}.upstream_rq_active`)).toBe(2)
    expect(s.get(`${c}.upstream_rq_pending_active`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_pending_overflow`)).toBe(1)
    expect(s.get(`${c}.upstream_rq_503`)).toBe(1)
    for (const res of held.splice(0)) res.end()
    await eventually(async () => {
      for (const res of held.splice(0)) res.end()
      return (await stat(`${c}.upstream_rq_active`)) === 0
    })
    await Promise.all(replies)
    s = await stats()
    expect(s.get(`${c}.upstream_rq_200`)).toBe(2)
    expect(s.get(`${c}.upstream_rq_pending_active`)).toBe(0)
  })

  it('counts ejections and the healthy membership', async () => {
    expect((await send(egress, 'down')).status).toBe(503)
    expect((await send(egress, 'down')).status).toBe(503)
    const s = await stats()
    const c = cluster('down')
    expect(s.get(`${c}.outlier_detection.ejections_active`)).toBe(2)
    expect(s.get(`${c}.outlier_detection.ejections_enforced_total`)).toBe(2)
    expect(s.get(`${c}.membership_total`)).toBe(2)
    expect(s.get(`${c}.membership_healthy`)).toBe(0)
  })
})

describe('listener and HTTP connection manager stats', () => {
  it('counts accepted connections and responses by class on the egress listener', async () => {
    const before = await stats()
    const prefix = `http.outbound_127.0.0.1_${egress}`
    const listener = `listener.127.0.0.1_${egress}`
    expect((await send(egress, 'ok')).status).toBe(200)
    expect((await send(egress, 'nowhere.example')).status).toBe(404)
    await eventually(
      async () =>
        (await stat(`${prefix}.downstream_rq_4xx`)) === (before.get(`${prefix}.downstream_rq_4xx`) ?? 0) + 1,
    )
    const s = await stats()
    const delta = (name: string): number => (s.get(name) ?? 0) - (before.get(name) ?? 0)
    expect(delta(`${prefix}.downstream_rq_total`)).toBe(2)
    expect(delta(`${prefix}.downstream_rq_http1_total`)).toBe(2)
    expect(delta(`${prefix}.downstream_rq_2xx`)).toBe(1)
    expect(delta(`${prefix}.downstream_rq_completed`)).toBe(2)
    // undici's global dispatcher keeps one connection per origin open across these sends.
    expect(s.get(`${listener}.downstream_cx_total`)).toBeGreaterThanOrEqual(1)
    expect(s.get(`${listener}.downstream_cx_active`)).toBeGreaterThanOrEqual(1)
    expect(s.get('server.total_connections')).toBe(s.get(`${listener}.downstream_cx_active`))
  })
})

describe('server stats', () => {
  it('reports live, the first config load, the worker count and memory', async () => {
    const s = await stats()
    expect(s.get('server.live')).toBe(1)
    expect(s.get('server.state')).toBe(0)
    expect(s.get('server.concurrency')).toBe(1)
    expect(s.get('cluster_manager.cds.update_success')).toBe(1)
    expect(s.get('cluster_manager.cds.update_rejected')).toBe(0)
    expect(s.get('listener_manager.lds.update_success')).toBe(1)
    expect(s.get('cluster_manager.active_clusters')).toBeGreaterThanOrEqual(6)
    expect(s.get('listener_manager.total_listeners_active')).toBe(1)
    expect(s.get('server.memory_allocated')).toBeGreaterThan(0)
    expect(s.get('server.memory_heap_size')).toBeGreaterThanOrEqual(s.get('server.memory_allocated') ?? 0)
  })
})

describe('admin /stats formats', () => {
  it('writes sorted `name: value` lines', async () => {
    const text = await (await proxy.admin('/stats')).text()
    const names = text
      .trimEnd()
      .split('\n')
      .map((l) => l.slice(0, l.lastIndexOf(': ')))
    expect(names).toEqual([...names].sort())
    expect(text).toMatch(/^server\.live: 1$/m)
  })

  it('filters with an RE2 regex, keeps only used stats with usedonly, and rejects a bad regex', async () => {
    const filtered = await stats('?filter=upstream_rq_2xx$')
    expect([...filtered.keys()].every((n) => n.endsWith('upstream_rq_2xx'))).toBe(true)
    expect(filtered.get(`${cluster('ok')}.upstream_rq_2xx`)).toBeGreaterThanOrEqual(3)
    const used = await stats('?usedonly&filter=^cluster\\.')
    expect(used.size).toBeGreaterThan(0)
    expect([...used.values()].every((v) => v !== 0)).toBe(true)
    expect((await proxy.admin('/stats?filter=(')).status).toBe(400)
  })

  it('answers ?format=json as Envoy: {"stats":[{"name","value"}]}', async () => {
    const body = (await (await proxy.admin('/stats?format=json&filter=^server\\.live$')).json()) as unknown
    expect(body).toEqual({ stats: [{ name: 'server.live', value: 1 }] })
  })

  it('writes the Prometheus form with envoy_ names and Istio tags as labels', async () => {
    const text = await (await proxy.admin('/stats/prometheus')).text()
    const name = 'outbound|80||ok.default.svc.cluster.local'
    expect(text).toContain('# TYPE envoy_cluster_upstream_rq_total counter')
    expect(text).toMatch(
      new RegExp(`^envoy_cluster_upstream_rq_total\\{cluster_name="${regexLiteral(name)}"\\} \\d+$`, 'm'),
    )
    expect(text).toMatch(
      new RegExp(
        `^envoy_cluster_upstream_rq\\{cluster_name="${regexLiteral(name)}",response_code="200"\\} \\d+$`,
        'm',
      ),
    )
    expect(text).toMatch(
      new RegExp(
        `^envoy_cluster_upstream_rq\\{cluster_name="${regexLiteral(name)}",response_code_class="2xx"\\} \\d+$`,
        'm',
      ),
    )
    expect(text).toContain('# TYPE envoy_cluster_upstream_cx_active gauge')
    expect(text).toMatch(
      new RegExp(
        `^envoy_listener_downstream_cx_total\\{listener_address="127.0.0.1_${egress}"\\} \\d+$`,
        'm',
      ),
    )
    expect(text).toMatch(/^envoy_server_live\{\} 1$/m)
    expect(text).toMatch(/^envoy_cluster_manager_cds_update_success\{\} 1$/m)
    // Registered once, by the certificate expiry gauge, not a second time by the stats text.
    expect(text.match(/# TYPE envoy_server_days_until_first_cert_expiring /g)).toHaveLength(1)
  })
})

function regexLiteral(text: string): string {
  return text.replace(/[|.\\[\]()*+?^$]/g, '\\$&')
}
