// Scenario: real @grpc/grpc-js clients and servers through the egress and ingress listeners (h2c, all call kinds).

import type { ClientHttp2Session } from 'node:http2'
import { Metadata, status } from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  EchoClient,
  type EchoServer,
  echoPath,
  type HangingServer,
  h2Session,
  headerBin,
  rawGrpc,
  startEchoServer,
  startHangingServer,
  trailerBin,
} from './harness/grpc.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'

const SERVICE_PORT = 50051

let proxy: ProxyProcess
let serverA: EchoServer
let serverB: EchoServer
let hanging: HangingServer
let egress: number
let ingressEcho: number
let ingressHang: number
let ingressClosed: number
let closedPort: number

/** A STATIC ServiceEntry `name` with one GRPC port served by 127.0.0.1:`targetPort`. */
function grpcService(name: string, targetPort: number): string {
  return istio.serviceEntry({
    name,
    ports: [{ number: SERVICE_PORT, name: 'grpc', protocol: 'GRPC', targetPort }],
  })
}

const grpcPort = [{ number: SERVICE_PORT, name: 'grpc', protocol: 'GRPC' }]

function resources(): Record<string, string> {
  return {
    'sidecar.yaml': istio.sidecar({
      egress: [{ port: egress, protocol: 'HTTP', name: 'http' }],
      ingress: [
        istio.loopbackIngress(ingressEcho, serverA.port, 'GRPC', 'grpc-echo'),
        istio.loopbackIngress(ingressHang, hanging.port, 'GRPC', 'grpc-hang'),
        istio.loopbackIngress(ingressClosed, closedPort, 'GRPC', 'grpc-closed'),
      ],
    }),
    'services.yaml': istio.yamlStream(
      grpcService('greeter', serverA.port),
      grpcService('slow', serverA.port),
      grpcService('hang', hanging.port),
      grpcService('closed', closedPort),
      istio.serviceEntry({
        name: 'routed',
        ports: grpcPort,
        endpoints: istio.versionEndpoints('grpc', { a: serverA.port, b: serverB.port }),
      }),
      istio.serviceEntry({
        name: 'half-dead',
        ports: grpcPort,
        endpoints: [
          { address: '127.0.0.1', ports: { grpc: closedPort } },
          { address: '127.0.0.1', ports: { grpc: serverA.port } },
        ],
      }),
    ),
    'routing.yaml': istio.yamlStream(
      istio.destinationRule({ host: 'routed', subsets: istio.versionSubsets('a', 'b') }),
      istio.virtualService({
        hosts: ['routed'],
        http: [
          {
            match: [{ uri: { exact: echoPath('ServerStream') } }],
            fault: { abort: { percentage: { value: 100 }, grpcStatus: 'UNAVAILABLE' } },
            route: istio.routeTo('routed', 'a'),
          },
          { match: [{ uri: { exact: echoPath('Unary') } }], route: istio.routeTo('routed', 'b') },
          { match: [{ uri: { prefix: '/test.Echo/' } }], route: istio.routeTo('routed', 'a') },
        ],
      }),
      istio.destinationRule({
        host: 'half-dead',
        trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
      }),
      istio.virtualService({ hosts: ['slow'], http: [{ timeout: '0.3s', route: istio.routeTo('slow') }] }),
    ),
  }
}

/** How a test reaches server A: straight (validates the test itself), or through one of the proxy's listeners. */
interface Target {
  readonly name: string
  readonly port: () => number
}

const targets: Target[] = [
  { name: 'direct', port: () => serverA.port },
  { name: 'egress', port: () => egress },
  { name: 'ingress', port: () => ingressEcho },
]
const clients: EchoClient[] = []
const targetClients = new Map<Target, EchoClient>()

/** The one channel a target's tests share, naming service `greeter`. */
function clientOf(target: Target): EchoClient {
  let client = targetClients.get(target)
  if (!client) {
    client = new EchoClient(target.port(), `greeter:${SERVICE_PORT}`)
    targetClients.set(target, client)
    clients.push(client)
  }
  return client
}

/** A client on the egress listener that names service `host`. */
function egressClient(host: string): EchoClient {
  const client = new EchoClient(egress, `${host}:${SERVICE_PORT}`)
  clients.push(client)
  return client
}

beforeAll(async () => {
  ;[serverA, serverB, hanging] = await Promise.all([
    startEchoServer('a'),
    startEchoServer('b'),
    startHangingServer(),
  ])
  ;[egress, ingressEcho, ingressHang, ingressClosed, closedPort] = await freePorts(5)
  proxy = await startProxy({ resources: resources() })
})

afterAll(async () => {
  for (const client of clients) client.close()
  await proxy?.stop()
  await Promise.all([serverA?.close(), serverB?.close(), hanging?.close()])
})

function binary(md: Metadata | undefined, key: string): Buffer | undefined {
  const value = md?.get(key)[0]
  return Buffer.isBuffer(value) ? value : undefined
}

describe.each(targets)('gRPC $name', (target) => {
  it('proxies unary, client-streaming, server-streaming and bidirectional calls with several messages', async () => {
    const client = clientOf(target)
    for (const text of ['one', 'two', 'three']) {
      const unary = await client.unary({ text })
      expect(unary.status.code).toBe(status.OK)
      expect(unary.replies).toEqual([expect.objectContaining({ server: 'a', text })])
    }

    const upload = await client.clientStream(
      ['m0', 'm1', 'm2', 'm3', 'm4'].map((text) => ({ text })),
      {},
      10,
    )
    expect(upload.status.code).toBe(status.OK)
    expect(upload.replies.map((r) => r.text)).toEqual(['m0,m1,m2,m3,m4'])

    const download = await client.serverStream({ text: 'd', count: 6, intervalMs: 5 })
    expect(download.status.code).toBe(status.OK)
    expect(download.replies.map((r) => r.text)).toEqual(['d-0', 'd-1', 'd-2', 'd-3', 'd-4', 'd-5'])

    const chat = await client.bidi(['x', 'y', 'z', 'w'].map((text) => ({ text })))
    expect(chat.status.code).toBe(status.OK)
    expect(chat.replies.map((r) => [r.text, r.index])).toEqual([
      ['echo:x', 0],
      ['echo:y', 1],
      ['echo:z', 2],
      ['echo:w', 3],
    ])
  })

  it('carries request metadata, response header metadata and trailers, ascii and -bin', async () => {
    const requestBin = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x0a])
    const md = new Metadata()
    md.set('x-request', 'hello world')
    md.set('x-request-bin', requestBin)
    const unary = await clientOf(target).unary({ text: 'meta' }, { metadata: md })
    expect(unary.status.code).toBe(status.OK)
    const seen = unary.replies[0]?.metadata ?? {}
    expect(seen['x-request']).toBe('hello world')
    expect(Buffer.from(seen['x-request-bin'] ?? '', 'base64')).toEqual(requestBin)
    expect(unary.headers?.get('x-server')).toEqual(['a'])
    expect(binary(unary.headers, 'x-header-bin')).toEqual(headerBin)
    expect(unary.status.metadata.get('x-trailer')).toEqual(['done-by-a'])
    expect(binary(unary.status.metadata, 'x-trailer-bin')).toEqual(trailerBin)

    const chat = await clientOf(target).bidi([{ text: 'p' }, { text: 'q' }], { metadata: md })
    expect(chat.status.code).toBe(status.OK)
    expect(binary(chat.headers, 'x-header-bin')).toEqual(headerBin)
    expect(chat.status.metadata.get('x-trailer')).toEqual(['done-by-a'])
    expect(binary(chat.status.metadata, 'x-trailer-bin')).toEqual(trailerBin)
  })

  it('passes a server error status with its details and trailers (trailers-only response)', async () => {
    const details = 'greeting "nobody" not found: 100% héllo'
    const failed = await clientOf(target).unary({ text: 'x', fail: { code: status.NOT_FOUND, details } })
    expect(failed.status.code).toBe(status.NOT_FOUND)
    expect(failed.status.details).toBe(details)
    expect(failed.replies).toEqual([])
    expect(failed.status.metadata.get('x-trailer')).toEqual(['done-by-a'])
    expect(binary(failed.status.metadata, 'x-trailer-bin')).toEqual(trailerBin)
  })

  it('ends a call at the client deadline with DEADLINE_EXCEEDED', async () => {
    const late = await clientOf(target).unary({ text: 'late', delayMs: 3_000 }, { deadlineMs: 300 })
    expect(late.status.code).toBe(status.DEADLINE_EXCEEDED)
    expect(late.ms).toBeGreaterThanOrEqual(250)
    expect(late.ms).toBeLessThan(2_000)
    const next = await clientOf(target).unary({ text: 'after' })
    expect(next.status.code).toBe(status.OK)
  })

  it('does not cut a 3 s server stream when no timeout is configured', async () => {
    const long = await clientOf(target).serverStream({ text: 'tick', count: 15, intervalMs: 200 })
    expect(long.status.code).toBe(status.OK)
    expect(long.replies).toHaveLength(15)
    expect(long.replies.map((r) => r.index)).toEqual([...Array(15).keys()])
    expect(long.ms).toBeGreaterThanOrEqual(2_700)
  })

  it('tells the server when the client cancels a stream', async () => {
    const before = serverA.cancelled.length
    const cut = await clientOf(target).serverStream(
      { text: 'cut', count: 50, intervalMs: 20 },
      { cancelAfter: 3 },
    )
    expect(cut.status.code).toBe(status.CANCELLED)
    await eventually(async () => serverA.cancelled.length > before, 3_000)
  })

  it('completes 200 concurrent unary calls over one channel', async () => {
    const calls = await Promise.all(
      Array.from({ length: 200 }, (_, i) => clientOf(target).unary({ text: `c${i}` })),
    )
    expect(calls.filter((c) => c.status.code !== status.OK).map((c) => c.status)).toEqual([])
    expect(calls.map((c) => c.replies[0]?.text)).toEqual(Array.from({ length: 200 }, (_, i) => `c${i}`))
  })
})

describe('raw h2 helper (direct, validates the trailers-only detection)', () => {
  it('sees a normal response with trailers, and a trailers-only error', async () => {
    const session = await h2Session(serverA.port)
    try {
      const ok = await rawGrpc(session, 'greeter', echoPath('Unary'), {}, { text: 'raw' })
      expect(ok.headers[':status']).toBe(200)
      expect(ok.trailersOnly).toBe(false)
      expect(ok.trailers?.['grpc-status']).toBe('0')
      const failed = await rawGrpc(
        session,
        'greeter',
        echoPath('Unary'),
        {},
        { fail: { code: 5, details: 'no' } },
      )
      expect(failed.trailersOnly).toBe(true)
      expect(failed.headers['grpc-status']).toBe('5')
    } finally {
      session.close()
    }
  })
})

/** Expects a proxy-generated gRPC answer: HTTP 200, application/grpc, status in a HEADERS frame with END_STREAM. */
function expectTrailersOnly(outcome: Awaited<ReturnType<typeof rawGrpc>>, grpcStatus: number): void {
  expect(outcome.headers[':status']).toBe(200)
  expect(outcome.headers['content-type']).toBe('application/grpc')
  expect(outcome.headers['grpc-status']).toBe(String(grpcStatus))
  expect(outcome.trailersOnly).toBe(true)
  expect(outcome.body.length).toBe(0)
}

describe.each([
  { name: 'egress', hang: () => egress, closed: () => egress },
  { name: 'ingress', hang: () => ingressHang, closed: () => ingressClosed },
])('gRPC failures the proxy generates on $name', (listener) => {
  let session: ClientHttp2Session | undefined
  afterAll(() => session?.close())

  it('enforces grpc-timeout against a server that never answers, then serves the next call', async () => {
    session = await h2Session(listener.hang())
    const authority = `hang:${SERVICE_PORT}`
    const timedOut = await rawGrpc(session, authority, '/test.Echo/Hang', { 'grpc-timeout': '200m' })
    expectTrailersOnly(timedOut, status.DEADLINE_EXCEEDED)
    expect(timedOut.headers['grpc-message']).toBeTruthy()
    expect(timedOut.ms).toBeGreaterThanOrEqual(150)
    expect(timedOut.ms).toBeLessThan(2_000)
    const next = await rawGrpc(session, authority, '/test.Echo/Ping')
    expect(next.headers[':status']).toBe(200)
    expect(next.headers['grpc-status']).toBe('0')
    expect(hanging.seen).toContain('/test.Echo/Hang')
  })

  it('resets the upstream stream when grpc-timeout fires', async () => {
    const session = await h2Session(listener.hang())
    try {
      const path = `/test.Echo/Hang${listener.name}`
      const timedOut = await rawGrpc(session, `hang:${SERVICE_PORT}`, path, {
        'grpc-timeout': '100m',
      })
      expect(timedOut.headers['grpc-status']).toBe(String(status.DEADLINE_EXCEEDED))
      await eventually(async () => hanging.reset.includes(path), 3_000)
    } finally {
      session.close()
    }
  })

  it('answers a connection failure with UNAVAILABLE, trailers-only', async () => {
    const client = new EchoClient(listener.closed(), `closed:${SERVICE_PORT}`)
    clients.push(client)
    const refused = await client.unary({ text: 'x' }, { deadlineMs: 5_000 })
    expect(refused.status.code).toBe(status.UNAVAILABLE)
    const raw = await h2Session(listener.closed())
    try {
      const outcome = await rawGrpc(raw, `closed:${SERVICE_PORT}`, echoPath('Unary'))
      expectTrailersOnly(outcome, status.UNAVAILABLE)
      expect(outcome.headers['grpc-message']).toBeTruthy()
    } finally {
      raw.close()
    }
  })
})

describe('gRPC VirtualService features on egress', () => {
  it('ends a slow unary call at the route timeout with DEADLINE_EXCEEDED', async () => {
    const client = egressClient('slow')
    const slow = await client.unary({ text: 'slow', delayMs: 3_000 })
    expect(slow.status.code).toBe(status.DEADLINE_EXCEEDED)
    expect(slow.ms).toBeGreaterThanOrEqual(250)
    expect(slow.ms).toBeLessThan(2_000)
    const quick = await client.unary({ text: 'quick' })
    expect(quick.status.code).toBe(status.OK)
  })

  it("retries a call whose endpoint refuses the connection on the other one (Istio's default policy)", async () => {
    const client = egressClient('half-dead')
    // Round robin sends every other first try to the closed port; the body was never read, so it is retried.
    for (let i = 0; i < 6; i++) {
      const call = await client.unary({ text: `call ${i}` })
      expect(call.status.code).toBe(status.OK)
      expect(call.replies[0]?.text).toBe(`call ${i}`)
    }
    const upload = await client.clientStream([{ text: 'x' }, { text: 'y' }])
    expect(upload.status.code).toBe(status.OK)
  })

  it('caps a longer grpc-timeout at the VirtualService timeout (Istio sets max_grpc_timeout to it)', async () => {
    const client = egressClient('slow')
    // grpc-js sends the 10 s deadline as grpc-timeout; the route's 0.3 s wins.
    const slow = await client.unary({ text: 'slow', delayMs: 3_000 }, { deadlineMs: 10_000 })
    expect(slow.status.code).toBe(status.DEADLINE_EXCEEDED)
    expect(slow.ms).toBeGreaterThanOrEqual(250)
    expect(slow.ms).toBeLessThan(2_000)
  })

  it('routes by method path, aborts one method with grpcStatus, and answers no route with UNIMPLEMENTED', async () => {
    const client = egressClient('routed')
    const unary = await client.unary({ text: 'u' })
    expect(unary.status.code).toBe(status.OK)
    expect(unary.replies[0]?.server).toBe('b')

    const upload = await client.clientStream([{ text: 'a' }, { text: 'b' }])
    expect(upload.status.code).toBe(status.OK)
    expect(upload.replies[0]?.server).toBe('a')

    const chat = await client.bidi([{ text: 'c' }])
    expect(chat.status.code).toBe(status.OK)
    expect(chat.replies[0]?.server).toBe('a')

    const before = serverA.calls.filter((p) => p === echoPath('ServerStream')).length
    const aborted = await client.serverStream({ text: 's', count: 2 })
    expect(aborted.status.code).toBe(status.UNAVAILABLE)
    expect(aborted.status.details).toBe('fault filter abort')
    expect(aborted.replies).toEqual([])
    expect(serverA.calls.filter((p) => p === echoPath('ServerStream')).length).toBe(before)

    const unrouted = await client.unary({ text: 'n' }, { path: '/other.Service/Method' })
    expect(unrouted.status.code).toBe(status.UNIMPLEMENTED)
  })
})
