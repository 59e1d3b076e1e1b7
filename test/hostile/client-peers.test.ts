// Clients that leave mid-exchange (HTTP/1.1, HTTP/2 resets and dropped sessions, gRPC cancels, WebSocket, TCP): the upstream side is cancelled, the log flags it, and nothing is left behind.

import { readFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { type ClientHttp2Session, type ClientHttp2Stream, constants as h2 } from 'node:http2'
import { type AddressInfo, connect, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Duplex } from 'node:stream'
import {
  Client,
  credentials,
  Server as GrpcServer,
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Metadata,
  ServerCredentials,
} from '@grpc/grpc-js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import { send } from '../harness/client.ts'
import { type EchoReply, type EchoRequest, echoPath, echoService } from '../harness/grpc.ts'
import { closeSession, h2Request, h2Session } from '../harness/h2.ts'
import * as istio from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startTcpServer, type TcpServer } from '../harness/tcp.ts'

const GRPC_PORT = 50051
const HOLD_CLUSTER = 'outbound|80||hold.default.svc.cluster.local'
const GRPC_CLUSTER = `outbound|${GRPC_PORT}||grpc.default.svc.cluster.local`
/** How long the proxy may take to tear an abandoned exchange down. */
const SETTLE_MS = 5_000

/** The app behind the proxy: what it received, and which requests it saw abandoned before it answered them. */
interface App {
  readonly server: Server
  readonly port: number
  /** Paths whose request head arrived. */
  readonly arrived: Set<string>
  /** Paths whose connection closed before the app finished its response (the proxy cancelled the request). */
  readonly abandoned: Set<string>
  /** Request body bytes received, by path. */
  readonly bodyBytes: Map<string, number>
  /** Connections open now (from the proxy's pool). */
  connections: number
}

/**
 * `/stream…` answers 200 and one chunk, then holds the response open; `/ok…` answers at once; any other path
 * reads its body and never answers.
 */
async function startApp(): Promise<App> {
  const arrived = new Set<string>()
  const abandoned = new Set<string>()
  const bodyBytes = new Map<string, number>()
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? ''
    arrived.add(path)
    bodyBytes.set(path, 0)
    req.on('data', (d: Buffer) => bodyBytes.set(path, (bodyBytes.get(path) ?? 0) + d.length))
    res.on('close', () => {
      if (!res.writableFinished) abandoned.add(path)
    })
    if (path.startsWith('/ok')) {
      req.on('end', () => res.end('ok'))
      return
    }
    if (path.startsWith('/stream')) {
      res.writeHead(200, { 'content-type': 'text/plain' })
      res.write('first-chunk\n')
    }
  })
  server.keepAliveTimeout = 10_000
  const app = { server, port: 0, arrived, abandoned, bodyBytes, connections: 0 }
  server.on('connection', (socket: Socket) => {
    app.connections++
    socket.on('close', () => app.connections--)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  app.port = (server.address() as AddressInfo).port
  return app
}

/** A gRPC `test.Echo` server that records the calls it received and those its client cancelled. */
interface GrpcApp {
  readonly port: number
  readonly calls: string[]
  readonly cancelled: string[]
  readonly server: GrpcServer
}

async function startGrpcApp(): Promise<GrpcApp> {
  const calls: string[] = []
  const cancelled: string[] = []
  const record = (name: string, call: { on(event: 'cancelled', listener: () => void): unknown }): void => {
    calls.push(name)
    call.on('cancelled', () => cancelled.push(name))
  }
  // Never answers: the client's cancel is the only way out.
  const unary: handleUnaryCall<EchoRequest, EchoReply> = (call) => record(`Unary:${call.request.text}`, call)
  const clientStream: handleClientStreamingCall<EchoRequest, EchoReply> = (call) => {
    call.once('data', (req: EchoRequest) => record(`ClientStream:${req.text}`, call))
  }
  const serverStream: handleServerStreamingCall<EchoRequest, EchoReply> = (call) => {
    record(`ServerStream:${call.request.text}`, call)
    let index = 0
    const timer = setInterval(() => call.write({ server: 'grpc', text: 'tick', index: index++ }), 50)
    call.on('cancelled', () => clearInterval(timer))
  }
  const server = new GrpcServer()
  server.addService(echoService, { Unary: unary, ClientStream: clientStream, ServerStream: serverStream })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  )
  return { port, calls, cancelled, server }
}

/** A WebSocket upstream that records its connections' closes. */
interface WsApp {
  readonly server: Server
  readonly port: number
  opened: number
  closed: number
}

async function startWsApp(): Promise<WsApp> {
  const wss = new WebSocketServer({ noServer: true })
  const server = createServer((_req, res) => res.end('plain'))
  const app: WsApp = { server, port: 0, opened: 0, closed: 0 }
  server.on('upgrade', (req: IncomingMessage, duplex: Duplex, head: Buffer) => {
    duplex.on('error', () => duplex.destroy())
    wss.handleUpgrade(req, duplex, head, (ws) => {
      app.opened++
      ws.on('error', () => {})
      ws.on('close', () => app.closed++)
      ws.on('message', (data) => ws.send(data.toString()))
      ws.send('hello')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return Object.assign(app, { port: (server.address() as AddressInfo).port })
}

interface LogEntry {
  path: string | null
  response_code: number
  response_flags: string
  response_code_details: string | null
  upstream_cluster: string | null
}

let proxy: ProxyProcess
let app: App
let grpcApp: GrpcApp
let wsApp: WsApp
let tcpApp: TcpServer
/** Upstream TCP connections that closed, counted by the TCP app's handler. */
let tcpClosed = 0
let tcpOpened = 0
let egress: number
let tcpPort: number

beforeAll(async () => {
  app = await startApp()
  grpcApp = await startGrpcApp()
  wsApp = await startWsApp()
  tcpApp = await startTcpServer('tcp', (socket) => {
    tcpOpened++
    socket.on('error', () => {})
    socket.on('close', () => tcpClosed++)
    socket.on('data', (d: Buffer) => socket.write(d))
    socket.on('end', () => socket.end())
  })
  ;[egress, tcpPort] = await freePorts(2)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.sidecar({
        egress: [{ port: egress, protocol: 'HTTP', name: 'http' }],
        ingress: [istio.loopbackIngress(tcpPort, tcpApp.port, 'TCP', 'tcp')],
      }),
      'services.yaml': istio.yamlStream(
        istio.loopbackService('hold', 80, app.port),
        istio.loopbackService('chat', 80, wsApp.port),
        istio.serviceEntry({
          name: 'grpc',
          ports: [{ number: GRPC_PORT, name: 'grpc', protocol: 'GRPC', targetPort: grpcApp.port }],
        }),
      ),
    },
    // One worker: /memory's active_resources then counts the data path's own handles and timers.
    extraBootstrap: `concurrency: 1
telemetry:
  accessLog: {path: logs/access.log, encoding: JSON}
`,
  })
  // Warm the pools, so that a case's baseline already holds their idle connections.
  expect((await send(egress, 'hold', '/ok-warm')).status).toBe(200)
}, 30_000)

afterAll(async () => {
  if (process.env.DEBUG_PEERS) console.log(proxy?.stderr())
  await proxy?.stop()
  app?.server.closeAllConnections()
  await new Promise((resolve) => app?.server.close(resolve))
  grpcApp?.server.forceShutdown()
  wsApp?.server.closeAllConnections()
  await new Promise((resolve) => wsApp?.server.close(resolve))
  await tcpApp?.close()
})

async function stats(): Promise<Map<string, number>> {
  const text = await (await proxy.admin('/stats')).text()
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(': ')
    if (at > 0) map.set(line.slice(0, at), Number(line.slice(at + 2)))
  }
  return map
}

/** What a finished exchange must give back: connections, requests, handles and timers. */
interface Snapshot {
  readonly listenerActive: number
  readonly upstreamCxActive: number
  readonly resources: Record<string, number>
}

async function snapshot(listenerPort: number, cluster: string): Promise<Snapshot> {
  const s = await stats()
  const memory = (await (await proxy.admin('/memory')).json()) as { active_resources: Record<string, number> }
  return {
    listenerActive: s.get(`listener.127.0.0.1_${listenerPort}.downstream_cx_active`) ?? -1,
    upstreamCxActive: s.get(`cluster.${cluster}.upstream_cx_active`) ?? -1,
    resources: memory.active_resources,
  }
}

/**
 * Polls (bounded) until the listener, the cluster and the proxy's handles and timers are back where they
 * were: no request active or pending, no downstream connection and no handle or timer of any kind above
 * `before`. The pool may keep one more idle connection than before (undici opens one for a request made
 * while another was busy): for the HTTP/1.1 app, upstream_cx_active must then be exactly what the app
 * has open; elsewhere it must not grow.
 */
async function settled(before: Snapshot, listenerPort: number, cluster: string): Promise<void> {
  const upstreamOk = (active: number): boolean =>
    cluster === HOLD_CLUSTER ? active === app.connections : active <= before.upstreamCxActive
  let last = ''
  try {
    await eventually(async () => {
      const s = await stats()
      const now = await snapshot(listenerPort, cluster)
      const grown = Object.entries(now.resources).filter(([kind, n]) => n > (before.resources[kind] ?? 0))
      const rqActive = s.get(`cluster.${cluster}.upstream_rq_active`)
      const rqPending = s.get(`cluster.${cluster}.upstream_rq_pending_active`)
      last = JSON.stringify({ rqActive, rqPending, before, now, grown, appConnections: app.connections })
      return (
        rqActive === 0 &&
        rqPending === 0 &&
        now.listenerActive <= before.listenerActive &&
        upstreamOk(now.upstreamCxActive) &&
        grown.length === 0
      )
    }, SETTLE_MS)
  } catch {
    throw new Error(`not settled within ${SETTLE_MS} ms: ${last}`)
  }
}

async function logEntry(path: string): Promise<LogEntry> {
  let found: LogEntry | undefined
  await eventually(async () => {
    const text = await readFile(join(proxy.dir, 'logs', 'access.log'), 'utf8').catch(() => '')
    found = text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as LogEntry)
      .find((e) => e.path === path)
    return found !== undefined
  })
  return found as LogEntry
}

async function until(check: () => boolean, what: string): Promise<void> {
  try {
    await eventually(async () => check(), SETTLE_MS)
  } catch {
    throw new Error(`${what} did not happen within ${SETTLE_MS} ms`)
  }
}

/** A raw HTTP/1.1 connection to the egress port. */
function open(port = egress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket))
    socket.on('error', () => {})
    socket.once('error', reject)
  })
}

/** Reads from `socket` until `text` has arrived. */
function received(socket: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = ''
    const timer = setTimeout(() => reject(new Error(`never received ${text}: ${data}`)), SETTLE_MS)
    socket.on('data', (d: Buffer) => {
      data += d.toString('latin1')
      if (data.includes(text)) {
        clearTimeout(timer)
        resolve(data)
      }
    })
  })
}

/** A request on a fresh connection that must be served while another client misbehaves. */
async function servedMeanwhile(tag: string): Promise<void> {
  const reply = await send(egress, 'hold', `/ok-${tag}`, { headers: { connection: 'close' } })
  expect(reply.status).toBe(200)
}

describe('HTTP/1.1 client disconnects', () => {
  it('mid-request body (chunked, streaming to the app): the upstream request is aborted, 0 DC', async () => {
    const before = await snapshot(egress, HOLD_CLUSTER)
    const path = '/h1-mid-body'
    const socket = await open()
    socket.write(`POST ${path} HTTP/1.1\r\nhost: hold\r\ntransfer-encoding: chunked\r\n\r\n`)
    socket.write(`400\r\n${'x'.repeat(0x400)}\r\n`)
    await until(() => (app.bodyBytes.get(path) ?? 0) >= 0x400, 'the app reading the first chunk')
    await servedMeanwhile('h1-mid-body')
    socket.destroy()
    await until(() => app.abandoned.has(path), 'the app seeing its request aborted')
    const entry = await logEntry(path)
    expect([entry.response_code, entry.response_flags, entry.response_code_details]).toEqual([
      0,
      'DC',
      'downstream_remote_disconnect',
    ])
    await settled(before, egress, HOLD_CLUSTER)
  })

  it('mid-request body of declared length (read whole first, for retries): the app receives nothing, 0 DC', async () => {
    const before = await snapshot(egress, HOLD_CLUSTER)
    const path = '/h1-buffered-body'
    const socket = await open()
    socket.write(`POST ${path} HTTP/1.1\r\nhost: hold\r\ncontent-length: 10000\r\n\r\n${'y'.repeat(1000)}`)
    await eventually(async () => (await stats()).get(`cluster.${HOLD_CLUSTER}.upstream_rq_active`) === 0)
    await new Promise((resolve) => setTimeout(resolve, 100))
    socket.destroy()
    const entry = await logEntry(path)
    expect([entry.response_code, entry.response_flags]).toEqual([0, 'DC'])
    expect(app.arrived.has(path)).toBe(false)
    await settled(before, egress, HOLD_CLUSTER)
  })

  it('after the request, before the response: the upstream request is aborted, 0 DC', async () => {
    const before = await snapshot(egress, HOLD_CLUSTER)
    const path = '/h1-waiting'
    const socket = await open()
    socket.write(`GET ${path} HTTP/1.1\r\nhost: hold\r\n\r\n`)
    await until(() => app.arrived.has(path), 'the request reaching the app')
    await servedMeanwhile('h1-waiting')
    socket.destroy()
    await until(() => app.abandoned.has(path), 'the app seeing its request aborted')
    const entry = await logEntry(path)
    expect([entry.response_code, entry.response_flags, entry.response_code_details]).toEqual([
      0,
      'DC',
      'downstream_remote_disconnect',
    ])
    await settled(before, egress, HOLD_CLUSTER)
  })

  it('mid-response body: the upstream response is abandoned, 200 DC', async () => {
    const before = await snapshot(egress, HOLD_CLUSTER)
    const path = '/stream-h1'
    const socket = await open()
    const head = received(socket, 'first-chunk')
    socket.write(`GET ${path} HTTP/1.1\r\nhost: hold\r\n\r\n`)
    expect(await head).toMatch(/^HTTP\/1\.1 200 /)
    await servedMeanwhile('stream-h1')
    socket.destroy()
    await until(() => app.abandoned.has(path), 'the app seeing its response abandoned')
    const entry = await logEntry(path)
    expect([entry.response_code, entry.response_flags]).toEqual([200, 'DC'])
    await settled(before, egress, HOLD_CLUSTER)
  })
})

describe('HTTP/2 client resets and drops', () => {
  let session: ClientHttp2Session

  beforeAll(async () => {
    session = await h2Session(egress)
  })

  afterAll(async () => {
    await closeSession(session)
  })

  /** A stream on the shared session whose errors are expected. */
  function stream(path: string, method = 'GET', endStream = true): ClientHttp2Stream {
    const s = session.request({ ':method': method, ':path': path, ':authority': 'hold' }, { endStream })
    s.on('error', () => {})
    return s
  }

  /** The same session still serves a request after one of its streams was reset. */
  async function sessionServes(tag: string): Promise<void> {
    const reply = await h2Request(session, { ':path': `/ok-same-session-${tag}`, ':authority': 'hold' })
    expect(reply.status).toBe(200)
  }

  it('RST_STREAM CANCEL mid-request body: the upstream request is aborted, the session keeps serving', async () => {
    // The session stays open through these cases: it counts in the listener's baseline.
    const before = await snapshot(egress, HOLD_CLUSTER)
    const path = '/h2-mid-body'
    const s = stream(path, 'POST', false)
    s.write(Buffer.alloc(2048, 1))
    await until(() => (app.bodyBytes.get(path) ?? 0) >= 2048, 'the app reading the first bytes')
    await servedMeanwhile('h2-mid-body')
    s.close(h2.NGHTTP2_CANCEL)
    await until(() => app.abandoned.has(path), 'the app seeing its request aborted')
    const entry = await logEntry(path)
    expect([entry.response_code, entry.response_flags, entry.response_code_details]).toEqual([
      0,
      'DR',
      'http2.remote_reset',
    ])
    await sessionServes('h2-mid-body')
    await settled(before, egress, HOLD_CLUSTER)
  })

  it('RST_STREAM CANCEL after the request, before the response: aborted upstream, 0 DR', async () => {
    const before = await snapshot(egress, HOLD_CLUSTER)
    const path = '/h2-waiting'
    const s = stream(path)
    await until(() => app.arrived.has(path), 'the request reaching the app')
    s.close(h2.NGHTTP2_CANCEL)
    await until(() => app.abandoned.has(path), 'the app seeing its request aborted')
    const entry = await logEntry(path)
    expect([entry.response_code, entry.response_flags]).toEqual([0, 'DR'])
    await sessionServes('h2-waiting')
    await settled(before, egress, HOLD_CLUSTER)
  })

  it('RST_STREAM CANCEL mid-response body: the upstream response is abandoned, 200 DR', async () => {
    const before = await snapshot(egress, HOLD_CLUSTER)
    const path = '/stream-h2'
    const s = stream(path)
    await new Promise<void>((resolve) => s.once('data', () => resolve()))
    s.close(h2.NGHTTP2_CANCEL)
    await until(() => app.abandoned.has(path), 'the app seeing its response abandoned')
    const entry = await logEntry(path)
    expect([entry.response_code, entry.response_flags]).toEqual([200, 'DR'])
    await sessionServes('stream-h2')
    await settled(before, egress, HOLD_CLUSTER)
  })

  it('the whole connection dropped with streams in flight: every upstream request aborted, 0 DC and 200 DC', async () => {
    const before = await snapshot(egress, HOLD_CLUSTER)
    let raw: Socket | undefined
    const doomed = await h2Session(egress, {
      createConnection: () => {
        raw = connect(egress, '127.0.0.1')
        return raw
      },
    })
    const waiting = doomed.request({ ':path': '/h2-drop-waiting', ':authority': 'hold' })
    const streaming = doomed.request({ ':path': '/stream-h2-drop', ':authority': 'hold' })
    waiting.on('error', () => {})
    streaming.on('error', () => {})
    await new Promise<void>((resolve) => streaming.once('data', () => resolve()))
    await until(() => app.arrived.has('/h2-drop-waiting'), 'the request reaching the app')
    await servedMeanwhile('h2-drop')
    // The TCP connection goes away under the session: no GOAWAY, no RST_STREAM.
    raw?.destroy()
    await until(
      () => app.abandoned.has('/h2-drop-waiting') && app.abandoned.has('/stream-h2-drop'),
      'the app seeing both requests aborted',
    )
    const [waited, streamed] = await Promise.all([logEntry('/h2-drop-waiting'), logEntry('/stream-h2-drop')])
    expect([waited.response_code, waited.response_flags]).toEqual([0, 'DC'])
    expect([streamed.response_code, streamed.response_flags]).toEqual([200, 'DC'])
    await settled(before, egress, HOLD_CLUSTER)
  })
})

describe('gRPC client cancels', () => {
  let client: Client

  beforeAll(async () => {
    client = new Client(`127.0.0.1:${egress}`, credentials.createInsecure(), {
      'grpc.default_authority': `grpc:${GRPC_PORT}`,
    })
    // A call the server does not implement (UNIMPLEMENTED at once) opens the channel and the upstream session.
    await new Promise<void>((resolve) =>
      client.makeUnaryRequest(echoPath('Bidi'), serialize, deserialize, {}, new Metadata(), () => resolve()),
    )
  })

  afterAll(() => client?.close())

  const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))
  const deserialize = (bytes: Buffer): EchoReply => JSON.parse(bytes.toString()) as EchoReply

  it('a unary call cancelled while the server works on it: the server sees `cancelled`', async () => {
    const before = await snapshot(egress, GRPC_CLUSTER)
    const call = client.makeUnaryRequest(
      echoPath('Unary'),
      serialize,
      deserialize,
      { text: 'cancel-unary' },
      new Metadata(),
      () => {},
    )
    await until(() => grpcApp.calls.includes('Unary:cancel-unary'), 'the call reaching the server')
    await servedMeanwhile('grpc-unary')
    call.cancel()
    await until(() => grpcApp.cancelled.includes('Unary:cancel-unary'), 'the server seeing `cancelled`')
    const entry = await logEntry(echoPath('Unary'))
    expect([entry.response_code, entry.response_flags]).toEqual([0, 'DR'])
    await settled(before, egress, GRPC_CLUSTER)
  })

  it('a client-streaming call cancelled mid-request: the server sees `cancelled`', async () => {
    const before = await snapshot(egress, GRPC_CLUSTER)
    const call = client.makeClientStreamRequest(
      echoPath('ClientStream'),
      serialize,
      deserialize,
      new Metadata(),
      () => {},
    )
    call.write({ text: 'cancel-upload' })
    await until(() => grpcApp.calls.includes('ClientStream:cancel-upload'), 'the first message arriving')
    call.cancel()
    await until(
      () => grpcApp.cancelled.includes('ClientStream:cancel-upload'),
      'the server seeing `cancelled`',
    )
    await settled(before, egress, GRPC_CLUSTER)
  })

  it('a server-streaming call cancelled mid-response: the server sees `cancelled` and stops', async () => {
    const before = await snapshot(egress, GRPC_CLUSTER)
    const call = client.makeServerStreamRequest(
      echoPath('ServerStream'),
      serialize,
      deserialize,
      { text: 'cancel-stream' },
      new Metadata(),
    )
    call.on('error', () => {})
    await new Promise<void>((resolve) => call.once('data', () => resolve()))
    call.cancel()
    await until(
      () => grpcApp.cancelled.includes('ServerStream:cancel-stream'),
      'the server seeing `cancelled`',
    )
    const entry = await logEntry(echoPath('ServerStream'))
    expect([entry.response_code, entry.response_flags]).toEqual([200, 'DR'])
    await settled(before, egress, GRPC_CLUSTER)
  })
})

describe('tunnels whose client vanishes', () => {
  it('WebSocket: the client socket destroyed without a close frame closes the upstream side', async () => {
    const before = await snapshot(egress, 'outbound|80||chat.default.svc.cluster.local')
    const ws = new WebSocket(`ws://127.0.0.1:${egress}/chat`, { headers: { host: 'chat' } })
    ws.on('error', () => {})
    await new Promise<void>((resolve) => ws.once('message', () => resolve()))
    const closedBefore = wsApp.closed
    await servedMeanwhile('ws')
    ws.terminate()
    await until(() => wsApp.closed > closedBefore, 'the upstream WebSocket closing')
    await settled(before, egress, 'outbound|80||chat.default.svc.cluster.local')
  })

  it('TCP: a client reset mid-connection closes the upstream connection', async () => {
    const before = await snapshot(tcpPort, `inbound|${tcpPort}||`)
    const socket = await open(tcpPort)
    const echoed = received(socket, 'ping')
    socket.write('ping')
    await echoed
    const closedBefore = tcpClosed
    expect(tcpOpened).toBeGreaterThan(0)
    const other = await open(tcpPort)
    const otherEchoed = received(other, 'pong')
    other.write('pong')
    await otherEchoed
    other.end()
    socket.resetAndDestroy()
    await until(() => tcpClosed >= closedBefore + 2, 'both upstream connections closing')
    await settled(before, tcpPort, `inbound|${tcpPort}||`)
  })
})
