// Scenario: with `concurrency: 2`, admin /stats (served by worker 0) counts the traffic of both worker threads, as Envoy's stats are per proxy.

import { Client } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { sidecar, staticService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let app: Upstream

beforeAll(async () => {
  app = await startUpstream('app')
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    extraBootstrap: 'concurrency: 2\n',
    resources: {
      'sidecar.yaml': sidecar({ egress: [{ port: egress, protocol: 'HTTP' }] }),
      'services.yaml': staticService('app', [`{address: 127.0.0.1, ports: {http: ${app.port}}}`]),
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

/** Each worker's accepted connections on the egress port (admin /listeners, Envoy's per-worker downstream_cx_total). */
async function perWorker(): Promise<number[]> {
  const listeners = (await (await proxy.admin('/listeners?format=json')).json()) as {
    address: string
    worker_downstream_cx_total: number[]
  }[]
  return listeners.find((l) => l.address.endsWith(`:${egress}`))?.worker_downstream_cx_total ?? []
}

async function stats(): Promise<Map<string, number>> {
  const text = await (await proxy.admin('/stats')).text()
  return new Map(
    text
      .trimEnd()
      .split('\n')
      .map((line) => [line.slice(0, line.lastIndexOf(': ')), Number(line.slice(line.lastIndexOf(': ') + 2))]),
  )
}

it('sums both workers: requests, responses by code, connections', async () => {
  // New connections until each worker has taken at least two (the kernel picks the worker per connection).
  let connections = 0
  let requests = 0
  for (let i = 0; i < 200; i++) {
    const counts = await perWorker()
    if (counts.length === 2 && counts.every((n) => n >= 2)) break
    const client = new Client(`http://127.0.0.1:${egress}`)
    connections++
    for (let r = 0; r < 3; r++) {
      const res = await client.request({ path: '/', method: 'GET', headers: { host: 'app' } })
      await res.body.text()
      expect(res.statusCode).toBe(200)
      requests++
    }
    await client.close()
  }
  const counts = await perWorker()
  expect(
    counts.every((n) => n >= 2),
    `connections per worker: ${counts}`,
  ).toBe(true)
  const s = await stats()
  const cluster = 'cluster.outbound|80||app.default.svc.cluster.local'
  expect(s.get('server.concurrency')).toBe(2)
  expect(s.get(`${cluster}.upstream_rq_total`)).toBe(requests)
  expect(s.get(`${cluster}.upstream_rq_200`)).toBe(requests)
  expect(s.get(`http.outbound_127.0.0.1_${egress}.downstream_rq_2xx`)).toBe(requests)
  expect(s.get(`listener.127.0.0.1_${egress}.downstream_cx_total`)).toBe(connections)
  // Each worker opened its own upstream connection(s); the active count is the proxy's.
  expect(s.get(`${cluster}.upstream_cx_total`)).toBeGreaterThanOrEqual(2)
})
