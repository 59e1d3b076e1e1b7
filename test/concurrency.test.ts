// Scenario: `concurrency: 2` runs two worker threads on the same ports (SO_REUSEPORT) whose limits hold for the whole proxy.
//
// Envoy's circuit breakers, outlier detection and local rate limits are per proxy, shared by its worker
// threads (source/common/upstream/resource_manager_impl.h, outlier_detection_impl.cc,
// filters/common/local_ratelimit). Each test here places its connections on chosen workers (the admin's
// per-worker accepted-connection counts tell which worker took a new connection), so a limit is shown to
// hold across both: without shared counters each worker would admit the whole limit on its own.

import type { ServerResponse } from 'node:http'
import { Client } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serviceWithPolicy, staticService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { type Handler, startUpstream, type Upstream } from './harness/upstream.ts'

interface Reply {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

/** One client connection to the proxy, on a known worker thread. */
interface WorkerConnection {
  readonly client: Client
  readonly worker: number
}

let proxy: ProxyProcess
let egress: number
const upstreams: Upstream[] = []
const opened: Client[] = []

/** Requests an upstream holds until the test releases them. */
function holding(): { handler: Handler; held: ServerResponse[]; release(): void } {
  const held: ServerResponse[] = []
  return {
    held,
    handler: (req, res) => {
      req.resume()
      held.push(res)
    },
    release: () => {
      for (const res of held.splice(0)) res.end('released')
    },
  }
}

const status =
  (code: number): Handler =>
  (req, res) => {
    req.resume()
    res.writeHead(code)
    res.end(`status ${code}`)
  }

const maxRequests = holding()
const pending = holding()
/** Answers a first try 503 and holds a retried one (x-envoy-attempt-count > 1). */
const retried = holding()
const failThenHold: Handler = (req, res) => {
  if (req.headers['x-envoy-attempt-count'] === '1') status(503)(req, res)
  else retried.handler(req, res)
}

/** Each worker's accepted connections on `port`, from the admin (Envoy's per-worker downstream_cx_total). */
async function workerConnections(port: number): Promise<number[]> {
  const listeners = (await (await proxy.admin('/listeners?format=json')).json()) as {
    address: string
    worker_downstream_cx_total: number[]
  }[]
  const listener = listeners.find((l) => l.address.endsWith(`:${port}`))
  if (listener === undefined) throw new Error(`no listener on ${port}`)
  return listener.worker_downstream_cx_total
}

async function request(client: Client, host: string, path = '/'): Promise<Reply> {
  const res = await client.request({ path, method: 'GET', headers: { host } })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

/**
 * Opens connections to `port` until `perWorker[w]` of them sit on worker w (the kernel picks the worker
 * per connection); the others are closed. Each is opened with a request to `app` that answers at once.
 */
async function connectionsOn(port: number, perWorker: readonly number[]): Promise<WorkerConnection[][]> {
  const placed: WorkerConnection[][] = perWorker.map(() => [])
  for (let tries = 0; tries < 200 && placed.some((list, w) => list.length < perWorker[w]); tries++) {
    const before = await workerConnections(port)
    const client = new Client(`http://127.0.0.1:${port}`, { pipelining: 1 })
    opened.push(client)
    expect((await request(client, 'app')).status).toBe(200)
    const after = await workerConnections(port)
    const worker = after.findIndex((n, w) => n > before[w])
    if (worker >= 0 && placed[worker].length < perWorker[worker]) placed[worker].push({ client, worker })
    else await client.close()
  }
  for (const [w, list] of placed.entries())
    expect(list, `connections on worker ${w}`).toHaveLength(perWorker[w])
  return placed
}

/** A cluster stat from the admin's /clusters: `<cluster>::<stat>::<value>`. */
async function clusterStat(cluster: string, stat: string): Promise<number> {
  const text = await (await proxy.admin('/clusters')).text()
  const line = text.split('\n').find((l) => l.startsWith(`${cluster}::${stat}::`))
  return Number(line?.slice(line.lastIndexOf('::') + 2) ?? Number.NaN)
}

const cluster = (name: string): string => `outbound|80||${name}.default.svc.cluster.local`

function expectOverflow(reply: Reply): void {
  expect(reply.status).toBe(503)
  expect(reply.headers['x-envoy-overloaded']).toBe('true')
}

beforeAll(async () => {
  const app = await startUpstream('app')
  const held = await startUpstream('held', maxRequests.handler)
  const queued = await startUpstream('queued', pending.handler)
  const bad = await startUpstream('bad', status(503))
  const good = await startUpstream('good', status(200))
  const retrying = await startUpstream('retrying', failThenHold)
  upstreams.push(app, held, queued, bad, good, retrying)
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    extraBootstrap: `concurrency: 2
rateLimits:
  - port: ${egress}
    route: limited
    tokenBucket: {maxTokens: 4, tokensPerFill: 4, fillInterval: 1h}
`,
    resources: {
      'sidecar.yaml': `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
    - port: {number: ${egress}, protocol: HTTP, name: http}
      hosts: ["./*"]
`,
      'services.yaml': [
        staticService('app', [`{address: 127.0.0.1, ports: {http: ${app.port}}}`]),
        serviceWithPolicy(
          'held',
          [`{address: 127.0.0.1, ports: {http: ${held.port}}}`],
          '    connectionPool: {http: {http2MaxRequests: 4}}\n',
        ),
        serviceWithPolicy(
          'queued',
          [`{address: 127.0.0.1, ports: {http: ${queued.port}}}`],
          '    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 2}}\n',
        ),
        serviceWithPolicy(
          'flaky',
          [bad, good].map((u) => `{address: 127.0.0.1, ports: {http: ${u.port}}}`),
          `    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 10m, maxEjectionPercent: 50}
`,
        ),
        serviceWithPolicy(
          'retrying',
          [`{address: 127.0.0.1, ports: {http: ${retrying.port}}}`],
          '    connectionPool: {http: {maxRetries: 1}}\n',
        ),
        `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: app, namespace: default}
spec:
  hosts: [app]
  http:
    - name: limited
      match: [{uri: {prefix: /limited}}]
      route: [{destination: {host: app}}]
    - name: free
      route: [{destination: {host: app}}]
`,
        `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: retrying, namespace: default}
spec:
  hosts: [retrying]
  http:
    - route: [{destination: {host: retrying}}]
      retries: {attempts: 3, retryOn: 5xx}
`,
      ].join('---\n'),
    },
  })
})

afterAll(async () => {
  for (const h of [maxRequests, pending, retried]) h.release()
  await Promise.all(opened.map((c) => c.destroy()))
  await proxy?.stop()
  await Promise.all(upstreams.map((u) => u.close()))
})

describe('worker threads', () => {
  it('runs two workers that both take connections on the shared port (per-worker counts in /listeners)', async () => {
    const before = await workerConnections(egress)
    expect(before).toHaveLength(2)
    // A new connection per request, so the kernel's SO_REUSEPORT hash spreads them over both workers.
    for (let i = 0; i < 60; i++) {
      const client = new Client(`http://127.0.0.1:${egress}`)
      expect((await request(client, 'app')).status).toBe(200)
      await client.close()
    }
    const after = await workerConnections(egress)
    const accepted = after.map((n, w) => n - before[w])
    expect(accepted[0] + accepted[1]).toBe(60)
    for (const n of accepted) expect(n).toBeGreaterThan(0)
  })

  it('http2MaxRequests of 4 holds for the whole proxy: 2 + 2 held on the two workers, then 503 UO on both', async () => {
    const [zero, one] = await connectionsOn(egress, [3, 3])
    const first = [zero[0], zero[1], one[0], one[1]].map((c, i) => request(c.client, 'held', `/${i}`))
    await eventually(async () => maxRequests.held.length === 4)
    expectOverflow(await request(zero[2].client, 'held', '/overflow-0'))
    expectOverflow(await request(one[2].client, 'held', '/overflow-1'))
    expect(await clusterStat(cluster('held'), 'upstream_rq_overflow')).toBe(2)
    maxRequests.release()
    for (const reply of await Promise.all(first)) expect(reply.status).toBe(200)
  })

  it('maxConnections 1 + http1MaxPendingRequests 2 admit 3 requests over both workers; the 4th and 5th overflow', async () => {
    const [zero, one] = await connectionsOn(egress, [3, 2])
    // One at a time, each counted before the next: 1 on the connection, then 2 pending (Envoy's model).
    const admitted = []
    for (const c of [zero[0], one[0], zero[1]]) {
      admitted.push(request(c.client, 'queued', '/'))
      const expected = admitted.length
      await eventually(async () => {
        const text = await (await proxy.admin('/clusters')).text()
        return text.includes(`::rq_active::${expected}\n`) && text.includes(cluster('queued'))
      })
    }
    expectOverflow(await request(one[1].client, 'queued', '/over-1'))
    expectOverflow(await request(zero[2].client, 'queued', '/over-0'))
    expect(await clusterStat(cluster('queued'), 'upstream_rq_pending_overflow')).toBe(2)
    // Each worker's pool opens its own connection (as each Envoy worker's pool may): release until all answer.
    const done = Promise.all(admitted)
    const releasing = setInterval(() => pending.release(), 20)
    for (const reply of await done) expect(reply.status).toBe(200)
    clearInterval(releasing)
  })

  it('a local rate limit of 4 tokens holds across workers: 3 + 3 requests on the two workers, 4 answered, 2 limited', async () => {
    const [zero, one] = await connectionsOn(egress, [1, 1])
    const statuses: number[] = []
    for (let i = 0; i < 3; i++) {
      statuses.push((await request(zero[0].client, 'app', '/limited')).status)
      statuses.push((await request(one[0].client, 'app', '/limited')).status)
    }
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429])
  })

  it('an outlier ejection made by one worker applies to the other', async () => {
    const [zero, one] = await connectionsOn(egress, [1, 1])
    const bad = upstreams.find((u) => u.name === 'bad') as Upstream
    // Round robin on worker 0 reaches the failing endpoint within two requests; one 503 ejects it.
    for (let i = 0; i < 2; i++) await request(zero[0].client, 'flaky')
    await eventually(async () =>
      (await (await proxy.admin('/clusters')).text()).includes('/failed_outlier_check'),
    )
    const badSeen = bad.seen.length
    // Worker 1 never saw the failure, yet balances over the healthy endpoint only.
    for (let i = 0; i < 6; i++) expect((await request(one[0].client, 'flaky')).status).toBe(200)
    expect(bad.seen.length).toBe(badSeen)
  })

  it('maxRetries 1 holds across workers: a retry in flight on one worker makes the other overflow', async () => {
    const [zero, one] = await connectionsOn(egress, [1, 1])
    const first = request(zero[0].client, 'retrying', '/first')
    // The first request's retry holds the only retry slot while the upstream holds it.
    await eventually(async () => retried.held.length === 1)
    const second = await request(one[0].client, 'retrying', '/second')
    expect(second.status).toBe(503)
    expect(await clusterStat(cluster('retrying'), 'upstream_rq_retry_overflow')).toBe(1)
    expect(retried.held).toHaveLength(1)
    retried.release()
    expect((await first).status).toBe(200)
  })

  it('drains every worker on SIGTERM and exits 0', async () => {
    proxy.child.kill('SIGTERM')
    expect(await proxy.exited).toBe(0)
    const client = new Client(`http://127.0.0.1:${egress}`)
    await expect(request(client, 'app')).rejects.toThrow()
    await client.destroy()
  })
})
