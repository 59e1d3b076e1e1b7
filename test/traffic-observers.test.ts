// The telemetry contract: every observer hears of each request's end once, and of each TCP connection's opening and end, with what happened.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { connect as connectHttp2 } from 'node:http2'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBootstrap } from '../src/bootstrap/load.ts'
import { ProxyRuntime } from '../src/proxy-runtime.ts'
import type { RequestRecord } from '../src/telemetry/request-record.ts'
import type { TcpRecord } from '../src/telemetry/tcp-record.ts'
import type { TrafficObserver } from '../src/telemetry/traffic-observer.ts'
import { loopbackIngress, sidecar, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually } from './harness/proxy-process.ts'
import { startTcpServer, type TcpServer } from './harness/tcp.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** What an observer copied of a record when it was called (a record is valid only during the call). */
interface SeenRequest {
  direction: string
  method: string
  path: string
  authority: string
  http2: boolean
  status: number
  flags: readonly string[]
  clusterName: string
  upstreamHostPort: string | undefined
  durationMs: number
  requestBodyBytes: number
}

const requests: SeenRequest[] = []
const tcpOpened: { listenerName: string }[] = []
const tcpEnded: Pick<TcpRecord, 'opened' | 'bytesReceived' | 'bytesSent' | 'clusterName'>[] = []

const recorder: TrafficObserver = {
  name: 'recorder',
  requestEnded(r: RequestRecord): void {
    requests.push({
      direction: r.direction,
      method: r.method,
      path: r.path,
      authority: r.authority,
      http2: r.http2,
      status: r.responseStatus,
      flags: [...r.responseFlags],
      clusterName: r.clusterName,
      upstreamHostPort: r.upstreamHostPort,
      durationMs: r.endTime - r.startTime,
      requestBodyBytes: r.requestBodyBytes,
    })
  },
  tcpOpened(r: TcpRecord): void {
    tcpOpened.push({ listenerName: r.listenerName })
  },
  tcpEnded(r: TcpRecord): void {
    tcpEnded.push({
      opened: r.opened,
      bytesReceived: r.bytesReceived,
      bytesSent: r.bytesSent,
      clusterName: r.clusterName,
    })
  },
}

/** Throws on every call: the traffic must not notice. */
const broken: TrafficObserver = {
  name: 'broken',
  requestEnded(): void {
    throw new Error('observer failure')
  },
  tcpEnded(): void {
    throw new Error('observer failure')
  },
}

let dir: string
let app: Upstream
let tcpApp: TcpServer
let runtime: ProxyRuntime
let httpPort: number
let tcpPort: number
/** An HTTP ingress port whose app port has nothing listening. */
let deadAppPort: number

beforeAll(async () => {
  app = await startUpstream('app')
  tcpApp = await startTcpServer('tcp-app')
  const [closedPort] = await freePorts(1)
  ;[httpPort, tcpPort, deadAppPort] = await freePorts(3)
  dir = await mkdtemp(join(tmpdir(), 'outrigger-observers-'))
  await writeFile(
    join(dir, 'sidecar.yaml'),
    yamlStream(
      sidecar({
        ingress: [
          loopbackIngress(httpPort, app.port, 'HTTP', 'http'),
          loopbackIngress(tcpPort, tcpApp.port, 'TCP', 'tcp'),
          loopbackIngress(deadAppPort, closedPort, 'HTTP', 'http-dead'),
        ],
      }),
    ),
  )
  const [admin, health] = await freePorts(2)
  await writeFile(
    join(dir, 'bootstrap.yaml'),
    `listeners:\n  admin: {port: ${admin}}\n  health: {port: ${health}, address: 127.0.0.1}\nresources: [${dir}/sidecar.yaml]\n`,
  )
  runtime = new ProxyRuntime(await loadBootstrap(join(dir, 'bootstrap.yaml')))
  runtime.observers.add(broken)
  runtime.observers.add(recorder)
  await runtime.start()
})

afterAll(async () => {
  await runtime?.shutdown()
  await app?.close()
  await tcpApp?.close()
  await rm(dir, { recursive: true, force: true })
})

describe('traffic observers', () => {
  it('hear of an HTTP/1.1 request once, after its response, with its status, cluster and host', async () => {
    requests.length = 0
    const res = await request(`http://127.0.0.1:${httpPort}/items?x=1`, { method: 'POST', body: 'hello' })
    expect(res.statusCode).toBe(200)
    await res.body.text()
    await eventually(async () => requests.length === 1)
    const [seen] = requests
    expect(seen).toMatchObject({
      direction: 'inbound',
      method: 'POST',
      path: '/items',
      authority: `127.0.0.1:${httpPort}`,
      http2: false,
      status: 200,
      flags: [],
      clusterName: `inbound|${httpPort}||`,
      upstreamHostPort: `127.0.0.1:${app.port}`,
    })
    expect(seen.durationMs).toBeGreaterThanOrEqual(0)
    // Nothing is called twice, even with the keep-alive connection still open.
    await new Promise((r) => setTimeout(r, 100))
    expect(requests).toHaveLength(1)
  })

  it('hear of a local reply with its response flag (the app refuses: 503 UF)', async () => {
    requests.length = 0
    const res = await request(`http://127.0.0.1:${deadAppPort}/down`)
    await res.body.text()
    expect(res.statusCode).toBe(503)
    await eventually(async () => requests.length === 1)
    expect(requests[0]).toMatchObject({ status: 503, path: '/down', clusterName: `inbound|${deadAppPort}||` })
    expect(requests[0].flags).toContain('UF')
  })

  it('hear of an HTTP/2 request', async () => {
    requests.length = 0
    const session = connectHttp2(`http://127.0.0.1:${httpPort}`)
    const stream = session.request({ ':path': '/h2' })
    stream.resume()
    await new Promise((resolve) => stream.on('close', resolve))
    session.close()
    await eventually(async () => requests.length === 1)
    expect(requests[0]).toMatchObject({ http2: true, path: '/h2', status: 200 })
  })

  it('hear of a TCP connection when it opens and once when it ends, with its byte counts', async () => {
    tcpOpened.length = 0
    tcpEnded.length = 0
    const socket = connect(tcpPort, '127.0.0.1')
    socket.write('ping')
    const echoed = await new Promise<string>((resolve) => socket.once('data', (d) => resolve(String(d))))
    expect(echoed).toContain('ping')
    expect(tcpOpened).toEqual([{ listenerName: expect.any(String) }])
    socket.end()
    await eventually(async () => tcpEnded.length === 1)
    expect(tcpEnded[0]).toMatchObject({ opened: true, bytesReceived: 4, clusterName: `inbound|${tcpPort}||` })
    expect(tcpEnded[0].bytesSent).toBeGreaterThanOrEqual(4)
    await new Promise((r) => setTimeout(r, 100))
    expect(tcpEnded).toHaveLength(1)
  })
})
