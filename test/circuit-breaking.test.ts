// Scenario: DestinationRule connectionPool limits (circuit breaking) and pool settings through a real proxy.

import type { ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Reply, send } from './harness/client.ts'
import { destinationRule, loopbackService, sidecar } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { answerAfter, type Handler, startUpstream, type Upstream } from './harness/upstream.ts'

const overflowBody = 'upstream connect error or disconnect/reset before headers. reset reason: overflow'

/** An upstream that holds every request until released. */
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

/** An upstream that answers `{port, connection}`: the client port of the connection the request came on. */
const socketEcho: Handler = (req, res) => {
  req.resume()
  res.end(JSON.stringify({ port: req.socket.remotePort, connection: req.headers.connection }))
}

/** A ServiceEntry `name` (port 80 → upstream) and, when `policy` is given, its DestinationRule. */
function service(name: string, upstream: Upstream, policy?: string): string {
  const entry = loopbackService(name, 80, upstream.port)
  return policy === undefined ? entry : `${entry}---\n${destinationRule(name, policy)}`
}

let proxy: ProxyProcess
let egress: number
const upstreams: Upstream[] = []
const maxRequests = holding()
const pending = holding()

beforeAll(async () => {
  const slow = await startUpstream('slow', answerAfter(20, 'ok'))
  const held = await startUpstream('held', maxRequests.handler)
  const queued = await startUpstream('queued', pending.handler)
  const perConnection = await startUpstream('per-connection', socketEcho)
  const reuse = await startUpstream('reuse', socketEcho)
  const idle = await startUpstream('idle', socketEcho)
  const aged = await startUpstream('aged', socketEcho)
  const agedSlow = await startUpstream('aged-slow', (req, res) => {
    req.resume()
    res.writeHead(200)
    res.write('a')
    setTimeout(() => res.end(JSON.stringify({ port: req.socket.remotePort })), 500)
  })
  upstreams.push(slow, held, queued, perConnection, reuse, idle, aged, agedSlow)
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': sidecar({ egress: [{ port: egress, protocol: 'HTTP' }] }),
      'services.yaml': [
        // The Istio circuit-breaking task's DestinationRule.
        service(
          'httpbin',
          slow,
          `    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
`,
        ),
        service('held', held, '    connectionPool: {http: {http2MaxRequests: 2}}\n'),
        service(
          'queued',
          queued,
          '    connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}\n',
        ),
        service(
          'per-connection',
          perConnection,
          '    connectionPool: {http: {maxRequestsPerConnection: 1}}\n',
        ),
        service('reuse', reuse),
        service('idle', idle, '    connectionPool: {http: {idleTimeout: 200ms}}\n'),
        service('aged', aged, '    connectionPool: {tcp: {maxConnectionDuration: 300ms}}\n'),
        service('aged-slow', agedSlow, '    connectionPool: {tcp: {maxConnectionDuration: 200ms}}\n'),
      ].join('---\n'),
    },
  })
})

afterAll(async () => {
  maxRequests.release()
  pending.release()
  await proxy?.stop()
  await Promise.all(upstreams.map((u) => u.close()))
})

function expectOverflow(reply: Reply): void {
  expect(reply.status).toBe(503)
  expect(reply.headers['x-envoy-overloaded']).toBe('true')
  expect(reply.body).toBe(overflowBody)
}

/** A stat of the cluster's (first) endpoint, from /clusters: `<cluster>::<host:port>::<stat>::<value>`. */
async function endpointStat(cluster: string, stat: string): Promise<number> {
  const text = await (await proxy.admin('/clusters')).text()
  const line = text.split('\n').find((l) => l.startsWith(`${cluster}::`) && l.includes(`::${stat}::`))
  return Number(line?.slice(line.lastIndexOf('::') + 2) ?? Number.NaN)
}

const portOf = (reply: Reply): number => (JSON.parse(reply.body) as { port: number }).port

describe('circuit breaking', () => {
  it("trips as in Istio's circuit-breaking task: 3 concurrent clients against 1 connection + 1 pending", async () => {
    const replies: Reply[] = []
    await Promise.all(
      [0, 1, 2].map(async () => {
        for (let i = 0; i < 30; i++) replies.push(await send(egress, 'httpbin', '/get'))
      }),
    )
    const ok = replies.filter((r) => r.status === 200)
    const overflowed = replies.filter((r) => r.status === 503)
    expect(ok.length).toBeGreaterThan(0)
    expect(overflowed.length).toBeGreaterThan(0)
    expect(ok.length + overflowed.length).toBe(90)
    for (const r of overflowed) expectOverflow(r)
    const text = await (await proxy.admin('/clusters')).text()
    expect(text).toContain(
      'outbound|80||httpbin.default.svc.cluster.local::default_priority::max_connections::1\n',
    )
    expect(text).toContain(
      'outbound|80||httpbin.default.svc.cluster.local::default_priority::max_pending_requests::1\n',
    )
  })

  it('http2MaxRequests caps requests in flight across the cluster', async () => {
    const first = [send(egress, 'held', '/1'), send(egress, 'held', '/2')]
    await eventually(async () => maxRequests.held.length === 2)
    expectOverflow(await send(egress, 'held', '/3'))
    maxRequests.release()
    for (const reply of await Promise.all(first)) expect(reply.status).toBe(200)
    // Capacity is back once the exchanges end.
    const again = send(egress, 'held', '/4')
    await eventually(async () => maxRequests.held.length === 1)
    maxRequests.release()
    expect((await again).status).toBe(200)
  })

  it('http1MaxPendingRequests caps requests waiting for one of maxConnections', async () => {
    const cluster = 'outbound|80||queued.default.svc.cluster.local'
    const active = send(egress, 'queued', '/1')
    await eventually(async () => pending.held.length === 1)
    const waiting = send(egress, 'queued', '/2') // queued behind the only connection
    await eventually(async () => (await endpointStat(cluster, 'rq_active')) === 2)
    expectOverflow(await send(egress, 'queued', '/3'))
    pending.release()
    expect((await active).status).toBe(200)
    await eventually(async () => pending.held.length === 1) // the waiting request got the connection
    pending.release()
    expect((await waiting).status).toBe(200)
  })

  it('maxRequestsPerConnection 1 closes the upstream connection after each request', async () => {
    const replies = []
    for (let i = 0; i < 4; i++) replies.push(await send(egress, 'per-connection', '/'))
    expect(new Set(replies.map(portOf)).size).toBe(4)
    expect(JSON.parse(replies[0].body).connection).toBe('close')
    // Without it, sequential requests reuse one kept-alive connection.
    const reused = []
    for (let i = 0; i < 4; i++) reused.push(await send(egress, 'reuse', '/'))
    expect(new Set(reused.map(portOf)).size).toBe(1)
  })

  it('http.idleTimeout closes idle upstream connections; maxConnectionDuration retires old ones', async () => {
    const pause = () => new Promise((r) => setTimeout(r, 600))
    const idle = [await send(egress, 'idle', '/')]
    const aged = [await send(egress, 'aged', '/')]
    const reuse = [await send(egress, 'reuse', '/')]
    await pause()
    idle.push(await send(egress, 'idle', '/'))
    aged.push(await send(egress, 'aged', '/'))
    reuse.push(await send(egress, 'reuse', '/'))
    expect(portOf(idle[1])).not.toBe(portOf(idle[0]))
    expect(portOf(aged[1])).not.toBe(portOf(aged[0]))
    expect(portOf(reuse[1])).toBe(portOf(reuse[0]))
  })

  it('maxConnectionDuration closes an idle HTTP/1.1 connection on time, and a busy one after its response', async () => {
    // Let the connection of the test before expire, so the next request opens a new one.
    await new Promise((r) => setTimeout(r, 400))
    const upstream = upstreams.find((u) => u.name === 'aged') as Upstream
    const closed: number[] = []
    const started = performance.now()
    upstream.server.once('connection', (socket) => socket.once('close', () => closed.push(performance.now())))
    await send(egress, 'aged', '/')
    await new Promise((r) => setTimeout(r, 700))
    // Closed by the proxy about 300 ms after it connected, with no request to trigger it.
    expect(closed).toHaveLength(1)
    expect(closed[0] - started).toBeGreaterThanOrEqual(250)

    // A 500 ms response on a 200 ms connection is not cut; the connection closes after it.
    const slow = upstreams.find((u) => u.name === 'aged-slow') as Upstream
    const slowClosed: number[] = []
    slow.server.once('connection', (socket) => socket.once('close', () => slowClosed.push(performance.now())))
    const reply = await send(egress, 'aged-slow', '/')
    const answered = performance.now()
    expect(reply.status).toBe(200)
    expect(reply.body.startsWith('a{"port":')).toBe(true)
    await eventually(async () => slowClosed.length === 1, 2000)
    expect(slowClosed[0]).toBeGreaterThanOrEqual(answered - 50)
  })
})
