// Scenario: with `concurrency: 2`, admin /live/stat and /live/history (served by worker 0) merge both worker threads' live numbers.

import { Client } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { HistoryReport, StatReport } from '../src/live/live-api.ts'
import { sidecar, staticService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const CLUSTER = 'outbound|80||app.default.svc.cluster.local'

let proxy: ProxyProcess
let egress: number
let app: Upstream

beforeAll(async () => {
  app = await startUpstream('app', (req, res) => {
    req.resume()
    res.statusCode = req.url === '/fail' ? 503 : 200
    res.end('ok')
  })
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    extraBootstrap: 'concurrency: 2\nlive: {enabled: true}\n',
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

/** Each worker's accepted connections on the egress port (admin /listeners). */
async function perWorker(): Promise<number[]> {
  const listeners = (await (await proxy.admin('/listeners?format=json')).json()) as {
    address: string
    worker_downstream_cx_total: number[]
  }[]
  return listeners.find((l) => l.address.endsWith(`:${egress}`))?.worker_downstream_cx_total ?? []
}

it('sums both workers exactly', async () => {
  let requests = 0
  let failed = 0
  // New connections until each worker has taken at least two (the kernel picks the worker per connection).
  for (let i = 0; i < 200; i++) {
    const counts = await perWorker()
    if (counts.length === 2 && counts.every((n) => n >= 2)) break
    const client = new Client(`http://127.0.0.1:${egress}`)
    for (let r = 0; r < 3; r++) {
      const path = r === 0 ? '/fail' : '/'
      const res = await client.request({ path, method: 'GET', headers: { host: 'app' } })
      await res.body.text()
      requests++
      if (res.statusCode === 503) failed++
    }
    await client.close()
  }
  expect((await perWorker()).every((n) => n >= 2)).toBe(true)
  expect(failed).toBe(requests / 3)

  const stat = (await (await proxy.admin('/live/stat?by=cluster&window=60s')).json()) as StatReport
  const row = stat.rows.find((r) => r.name === CLUSTER)
  expect(row).toMatchObject({ requests, successRate: (requests - failed) / requests })
  expect(row?.latencyMs).not.toBeNull()

  // Once the seconds have closed, the history of both workers holds every request.
  await expect
    .poll(
      async () => {
        const history = (await (await proxy.admin('/live/history?by=cluster')).json()) as HistoryReport
        const points = history.rows.find((r) => r.name === CLUSTER)?.points ?? []
        return points.reduce((sum, p) => sum + p.requestsPerSecond, 0)
      },
      { timeout: 5_000 },
    )
    .toBe(requests)
})
