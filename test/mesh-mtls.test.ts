// Scenario: two sidecars on loopback: the client's egress originates ISTIO_MUTUAL, the server's STRICT ingress terminates it; HTTP/1.1, gRPC and TCP.

import { writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoed, send, sendRaw } from './harness/client.ts'
import { EchoClient, type EchoServer, startEchoServer } from './harness/grpc.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { exchange, startTcpServer, type TcpServer } from './harness/tcp.ts'
import { type TestCa, testCa } from './harness/tls-ca.ts'
import type { TestCert } from './harness/tls-cert.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep'
const REVIEWS = 'spiffe://cluster.local/ns/default/sa/reviews'

let ca: TestCa
let dir: string
let app: Upstream
let grpcApp: EchoServer
let tcpApp: TcpServer
let server: ProxyProcess
let client: ProxyProcess
let inHttp: number
let inGrpc: number
let inTcp: number
let outHttp: number
let outGrpc: number
let outTcp: number

function workloadTls(name: string, cert: TestCert): string {
  writeFileSync(join(dir, `${name}-key.pem`), cert.key)
  writeFileSync(join(dir, `${name}-chain.pem`), cert.cert)
  return `tls:
  certChain: ${join(dir, `${name}-chain.pem`)}
  privateKey: ${join(dir, `${name}-key.pem`)}
  rootCert: ${join(dir, 'root-cert.pem')}
`
}

/** A MESH_INTERNAL service on `port` whose one endpoint is the server sidecar's ingress `target`, running as reviews. */
function meshService(name: string, port: number, protocol: string, target: number): string {
  return istio.serviceEntry({
    name,
    ports: [{ number: port, name: 'p', protocol }],
    endpoints: [
      { address: '127.0.0.1', ports: { p: target }, serviceAccount: 'reviews' } as istio.WorkloadEndpoint,
    ],
    spec: { location: 'MESH_INTERNAL' },
  })
}

beforeAll(async () => {
  ca = testCa('pair-root')
  dir = await mkdtemp(join(tmpdir(), 'outrigger-pair-'))
  writeFileSync(join(dir, 'root-cert.pem'), ca.cert)
  app = await startUpstream('reviews')
  grpcApp = await startEchoServer('reviews-grpc')
  tcpApp = await startTcpServer('reviews-tcp')
  ;[inHttp, inGrpc, inTcp, outHttp, outGrpc, outTcp] = await freePorts(6)
  server = await startProxy({
    labels: { app: 'reviews' },
    resources: {
      'server.yaml': istio.yamlStream(
        istio.sidecar({
          ingress: [
            istio.loopbackIngress(inHttp, app.port, 'HTTP', 'http'),
            istio.loopbackIngress(inGrpc, grpcApp.port, 'GRPC', 'grpc'),
            istio.loopbackIngress(inTcp, tcpApp.port, 'TCP', 'tcp'),
          ],
        }),
        `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: STRICT}
`,
      ),
    },
    extraBootstrap: workloadTls('reviews', ca.issue('reviews', [`URI:${REVIEWS}`])),
  })
  const rule = (host: string): string =>
    istio.destinationRule({ host, trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } })
  client = await startProxy({
    labels: { app: 'sleep' },
    resources: {
      'client.yaml': istio.yamlStream(
        istio.sidecar({
          egress: [
            { port: outHttp, protocol: 'HTTP', name: 'http' },
            { port: outGrpc, protocol: 'GRPC', name: 'grpc' },
            { port: outTcp, protocol: 'TCP', name: 'tcp' },
          ],
        }),
        meshService('reviews', outHttp, 'HTTP', inHttp),
        rule('reviews'),
        meshService('reviews-grpc', outGrpc, 'GRPC', inGrpc),
        rule('reviews-grpc'),
        meshService('reviews-tcp', outTcp, 'TCP', inTcp),
        rule('reviews-tcp'),
      ),
    },
    extraBootstrap: workloadTls('sleep', ca.issue('sleep', [`URI:${SLEEP}`])),
  })
}, 60_000)

afterAll(async () => {
  await client?.stop()
  await server?.stop()
  await app?.close()
  await grpcApp?.close()
  await tcpApp?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('a sidecar pair over Istio mTLS', () => {
  it('HTTP/1.1: the server sidecar sees the client workload identity and tells the app by XFCC', async () => {
    const reply = await send(outHttp, 'reviews', '/pair')
    expect(reply.status).toBe(200)
    const xfcc = echoed(reply).headers['x-forwarded-client-cert']
    expect(xfcc).toMatch(new RegExp(`^By=${REVIEWS};Hash=[0-9a-f]{64};Subject="CN=sleep";URI=${SLEEP}$`))
  })

  it('gRPC: a unary call passes both sidecars with its trailers', async () => {
    const grpc = new EchoClient(outGrpc, 'reviews-grpc')
    try {
      const outcome = await grpc.unary({ text: 'paired' })
      expect(outcome.status.code).toBe(0)
      expect(outcome.replies[0]).toMatchObject({ text: 'paired' })
    } finally {
      grpc.close()
    }
  })

  it('TCP: bytes pass both sidecars', async () => {
    const reply = await exchange(outTcp, 'tcp over the pair')
    expect(reply.text).toBe('tcp over the pair')
    expect(reply.ended).toBe(true)
  })

  it('the STRICT server refuses a client that skips its sidecar (plain text)', async () => {
    expect(await sendRaw(inHttp, 'GET / HTTP/1.1\r\nhost: reviews\r\n\r\n')).toBe('')
  })
})
