// Scenario: a client sidecar in front of a server sidecar in front of apps, over Istio mTLS: Istio's standard metrics counted exactly by both reporters on their stats ports (HTTP, gRPC, TCP), and summed across worker threads.

import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EchoClient, type EchoServer, startEchoServer } from './harness/grpc.ts'
import * as istio from './harness/istio.ts'
import { createMeshCa, filesTls, type MeshCa, retryingPortClash } from './harness/mesh.ts'
import { type PortTable, startClientSidecar, startServerSidecar } from './harness/mesh-pair.ts'
import { freePorts } from './harness/ports.ts'
import { sumOf } from './harness/prometheus-text.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { exchange, startTcpServer, type TcpServer } from './harness/tcp.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep'
const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews'

let ca: MeshCa
let httpApp: Upstream
let grpcApp: EchoServer
let tcpApp: TcpServer
let server: ProxyProcess
let client: ProxyProcess
const port: PortTable = {}

async function scrape(proxy: ProxyProcess): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${proxy.statsPort}/stats/prometheus`)
  expect(res.status).toBe(200)
  return res.text()
}

beforeAll(async () => {
  ca = await createMeshCa('outrigger-metrics-')
  const sleepCerts = ca.issue(SLEEP, 'sleep')
  const reviewsCerts = ca.issue(REVIEWS, 'reviews')
  httpApp = await startUpstream('reviews')
  grpcApp = await startEchoServer('reviews-grpc')
  tcpApp = await startTcpServer('reviews-tcp')
  server = await startServerSidecar({
    ports: port,
    labels: { app: 'reviews', version: 'v1' },
    inbound: [
      { port: 'inHttp', appPort: httpApp.port, protocol: 'HTTP', name: 'http' },
      { port: 'inGrpc', appPort: grpcApp.port, protocol: 'GRPC', name: 'grpc' },
      { port: 'inTcp', appPort: tcpApp.port, protocol: 'TCP', name: 'tcp' },
    ],
    tls: filesTls(reviewsCerts),
  })
  client = await startClientSidecar({
    ports: port,
    routes: [
      { listen: 'outHttp', name: 'http', host: 'reviews', protocol: 'HTTP', target: 'inHttp' },
      { listen: 'outGrpc', name: 'grpc', host: 'reviews-grpc', protocol: 'GRPC', target: 'inGrpc' },
      { listen: 'outTcp', name: 'tcp', host: 'reviews-tcp', protocol: 'TCP', target: 'inTcp' },
    ],
    tls: filesTls(sleepCerts),
  })
}, 120_000)

afterAll(async () => {
  await client?.stop()
  await server?.stop()
  await httpApp?.close()
  await grpcApp?.close()
  await tcpApp?.close()
  await ca?.remove()
})

describe('Istio standard metrics over a pair of sidecars (istio/proxy istio_stats.cc)', () => {
  it('HTTP: counts, sizes and durations for reporter=source and reporter=destination, with mTLS principals', async () => {
    const origin = `http://127.0.0.1:${port.outHttp}`
    for (let i = 0; i < 3; i++) {
      const res = await request(`${origin}/get`, { headers: { host: 'reviews' } })
      expect(res.statusCode).toBe(200)
      await res.body.text()
    }
    const posted = await request(`${origin}/post`, {
      method: 'POST',
      headers: { host: 'reviews', 'content-type': 'text/plain' },
      body: 'hello',
    })
    await posted.body.text()
    const missing = await request(`${origin}/x`, { headers: { host: 'nowhere' } })
    expect(missing.statusCode).toBe(404)
    await missing.body.text()

    const source = {
      reporter: 'source',
      source_workload: 'test',
      source_canonical_service: 'sleep',
      source_principal: SLEEP,
      destination_service_name: 'reviews',
      // Learnt from the server sidecar's response headers (the peer metadata exchange).
      destination_workload: 'test',
      destination_app: 'reviews',
      destination_version: 'v1',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v1',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'unknown',
    }
    const destination = {
      reporter: 'destination',
      source_principal: SLEEP,
      // Learnt from the client sidecar's request headers (the peer metadata exchange).
      source_workload: 'test',
      source_app: 'sleep',
      source_canonical_service: 'sleep',
      source_canonical_revision: 'latest',
      source_workload_namespace: 'default',
      destination_workload: 'test',
      destination_principal: REVIEWS,
      destination_app: 'reviews',
      destination_version: 'v1',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v1',
      request_protocol: 'http',
      response_code: '200',
      connection_security_policy: 'mutual_tls',
    }
    await eventually(async () => sumOf(await scrape(server), 'istio_requests_total', destination) >= 4)
    const out = await scrape(client)
    const inn = await scrape(server)
    expect(sumOf(out, 'istio_requests_total', source)).toBe(4)
    // No route: 404 NR, counted by the client side only, with destination_service unknown.
    expect(
      sumOf(out, 'istio_requests_total', {
        reporter: 'source',
        response_code: '404',
        response_flags: 'NR',
        destination_service: 'nowhere',
      }),
    ).toBe(1)
    expect(sumOf(inn, 'istio_requests_total', { reporter: 'source' })).toBe(0)
    expect(sumOf(out, 'istio_request_duration_milliseconds_count', source)).toBe(4)
    expect(sumOf(inn, 'istio_request_duration_milliseconds_count', destination)).toBe(4)
    // Body bytes: the one POST carried 5; each side saw the same response bodies.
    expect(sumOf(out, 'istio_request_bytes_sum', source)).toBe(5)
    expect(sumOf(inn, 'istio_request_bytes_sum', destination)).toBe(5)
    const responseBytes = sumOf(out, 'istio_response_bytes_sum', source)
    expect(responseBytes).toBeGreaterThan(0)
    expect(sumOf(inn, 'istio_response_bytes_sum', destination)).toBe(responseBytes)
    expect(sumOf(out, 'istio_request_bytes_bucket', { ...source, le: '0.5' })).toBe(3)
    expect(sumOf(out, 'istio_request_bytes_bucket', { ...source, le: '+Inf' })).toBe(4)
    // Admin /stats/prometheus serves the same metrics.
    const admin = await (await client.admin('/stats/prometheus')).text()
    expect(sumOf(admin, 'istio_requests_total', source)).toBe(4)
  })

  it('gRPC: grpc_response_status and message counts on both sides', async () => {
    const grpc = new EchoClient(port.outGrpc, 'reviews-grpc')
    try {
      expect((await grpc.unary({ text: 'a' })).status.code).toBe(0)
      expect((await grpc.clientStream([{ text: 'b' }, { text: 'c' }, { text: 'd' }])).status.code).toBe(0)
      expect((await grpc.unary({ fail: { code: 5, details: 'no such thing' } })).status.code).toBe(5)
    } finally {
      grpc.close()
    }
    const ok = { request_protocol: 'grpc', grpc_response_status: '0', response_code: '200' }
    const notFound = { request_protocol: 'grpc', grpc_response_status: '5', response_code: '200' }
    for (const [proxy, reporter] of [
      [server, 'destination'],
      [client, 'source'],
    ] as const) {
      await eventually(
        async () => sumOf(await scrape(proxy), 'istio_requests_total', { reporter, ...notFound }) >= 1,
      )
      const text = await scrape(proxy)
      expect(sumOf(text, 'istio_requests_total', { reporter, ...ok })).toBe(2)
      // One unary request, three streamed, one failed call's request: 5 messages in; 2 replies out.
      expect(sumOf(text, 'istio_request_messages_total', { reporter, request_protocol: 'grpc' })).toBe(5)
      expect(sumOf(text, 'istio_response_messages_total', { reporter, request_protocol: 'grpc' })).toBe(2)
    }
  })

  it('TCP: connections opened and closed and bytes each way, request_protocol=tcp', async () => {
    const reply = await exchange(port.outTcp, 'twelve bytes')
    expect(reply.text).toBe('twelve bytes')
    for (const [proxy, labels] of [
      [
        server,
        {
          reporter: 'destination',
          connection_security_policy: 'mutual_tls',
          source_principal: SLEEP,
          // From the istio-peer-exchange on the mTLS connection.
          source_canonical_service: 'sleep',
        },
      ],
      [
        client,
        {
          reporter: 'source',
          connection_security_policy: 'unknown',
          source_principal: SLEEP,
          destination_canonical_service: 'reviews',
          destination_version: 'v1',
        },
      ],
    ] as const) {
      const tcp = { ...labels, request_protocol: 'tcp' }
      await eventually(
        async () => sumOf(await scrape(proxy), 'istio_tcp_connections_closed_total', tcp) >= 1,
      ).catch(async (err: Error) => {
        throw new Error(
          `${err.message}:\n${(await scrape(proxy))
            .split('\n')
            .filter((l) => l.startsWith('istio_tcp'))
            .join('\n')}`,
        )
      })
      const text = await scrape(proxy)
      expect(sumOf(text, 'istio_tcp_connections_closed_total', tcp)).toBe(1)
      expect(sumOf(text, 'istio_tcp_connections_opened_total', tcp)).toBe(1)
      expect(sumOf(text, 'istio_tcp_received_bytes_total', tcp)).toBe(12)
      expect(sumOf(text, 'istio_tcp_sent_bytes_total', tcp)).toBe(12)
    }
  })
})

describe('worker threads (concurrency: 2)', () => {
  let app: Upstream
  let proxy: ProxyProcess
  let listen: number

  beforeAll(async () => {
    app = await startUpstream('app')
    proxy = await retryingPortClash(async () => {
      ;[listen] = await freePorts(1)
      return startProxy({
        resources: {
          'sidecar.yaml': istio.sidecar({
            ingress: [istio.loopbackIngress(listen, app.port, 'HTTP', 'http')],
          }),
        },
        extraBootstrap: 'concurrency: 2\n',
      })
    })
  }, 60_000)

  afterAll(async () => {
    await proxy?.stop()
    await app?.close()
  })

  it('the stats port sums every worker: each fresh connection lands on either worker, the total is exact', async () => {
    const total = 40
    for (let i = 0; i < total; i++) {
      // A new connection each time, so the kernel spreads them over both workers (SO_REUSEPORT).
      const res = await request(`http://127.0.0.1:${listen}/`, { reset: true })
      await res.body.text()
    }
    const labels = { reporter: 'destination', response_code: '200' }
    const stats = async (): Promise<string> =>
      (await fetch(`http://127.0.0.1:${proxy.statsPort}/stats/prometheus`)).text()
    await eventually(async () => sumOf(await stats(), 'istio_requests_total', labels) >= total).catch(
      async (err: Error) => {
        throw new Error(
          `${err.message}:\n${(await stats())
            .split('\n')
            .filter((l) => l.startsWith('istio_requests'))
            .join('\n')}\n${proxy.stderr()}`,
        )
      },
    )
    // Both workers served some of them (Envoy's per-worker downstream_cx_total), so the sum is a real merge.
    const listeners = (await (await proxy.admin('/listeners?format=json')).json()) as {
      worker_downstream_cx_total: number[]
    }[]
    const perWorker = listeners[0].worker_downstream_cx_total
    expect(perWorker).toHaveLength(2)
    expect(Math.min(...perWorker)).toBeGreaterThan(0)
    const text = await stats()
    expect(sumOf(text, 'istio_requests_total', labels)).toBe(total)
    expect(sumOf(text, 'istio_request_duration_milliseconds_count', labels)).toBe(total)
    // Envoy's stats join the merged scrape once: they count in the table every worker shares.
    expect(sumOf(text, 'envoy_cluster_upstream_rq_total')).toBe(total)
    const admin = await (await proxy.admin('/stats/prometheus')).text()
    expect(sumOf(admin, 'istio_requests_total', labels)).toBe(total)
    // The certificate gauge is every worker's same value, merged by min rather than summed.
    expect(sumOf(admin, 'envoy_server_days_until_first_cert_expiring')).toBe(2 ** 32 - 1)
  })
})
