// Misbehaving upstreams (HTTP/1.1 and HTTP/2): each case checks the client's status or reset, the access-log flag, a parallel healthy request, and that no socket, timer or pool slot is left behind.

import { readFile } from 'node:fs/promises'
import { type ClientHttp2Session, constants, type ServerHttp2Stream } from 'node:http2'
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { echoed, type Reply, send, sendRaw } from '../harness/client.ts'
import { grpcFrame } from '../harness/grpc.ts'
import {
  closeSession,
  type H2Reply,
  H2StreamError,
  type H2Upstream,
  h2Request,
  h2Session,
  startH2Upstream,
} from '../harness/h2.ts'
import * as istio from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'

const resetBefore = 'upstream connect error or disconnect/reset before headers. reset reason: '

let proxy: ProxyProcess
/** The HTTP egress port every service is reached on (by Host). */
let egress: number
let healthy: Upstream
/** Hand-written HTTP/1.1 bytes, by request path (see `misbehave`). */
let h1: NetServer
let h1Port: number
/** Connections h1 accepted, and requests it read on each (the keep-alive race needs to know). */
let h1Connections = 0
const h1Requests: string[] = []
let h2: H2Upstream
const h1Sockets = new Set<Socket>()

/** An access-log entry (Istio's JSON format), the fields these cases read. */
interface Entry {
  path: string | null
  response_code: number
  response_flags: string
  response_code_details: string | null
  upstream_cluster: string | null
}

/** What the proxy holds for the upstream side: its thread's handles and timers, and each cluster's gauges. */
interface Held {
  resources: Record<string, number>
  gauges: Record<string, number>
}

const gaugeNames = ['upstream_cx_active', 'upstream_rq_active', 'upstream_rq_pending_active']

async function held(): Promise<Held> {
  const memory = (await (await proxy.admin('/memory')).json()) as { active_resources: Record<string, number> }
  const text = await (await proxy.admin('/stats')).text()
  const gauges: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(': ')
    if (at < 0 || !line.startsWith('cluster.outbound|')) continue
    const name = line.slice(0, at)
    if (gaugeNames.some((gauge) => name.endsWith(`.${gauge}`))) gauges[name] = Number(line.slice(at + 2))
  }
  return { resources: memory.active_resources, gauges }
}

/**
 * Waits (bounded) until the proxy holds no more than it did at `before`: no extra socket, timer or
 * request in flight. Idle pooled connections to healthy upstreams may stay; they were in `before` too.
 */
async function expectNothingLeft(before: Held): Promise<void> {
  let now = before
  try {
    await eventually(async () => {
      now = await held()
      for (const [kind, count] of Object.entries(now.resources))
        if (count > (before.resources[kind] ?? 0)) return false
      for (const [name, value] of Object.entries(now.gauges)) {
        if (name.endsWith('upstream_cx_active')) {
          if (value > (before.gauges[name] ?? 0)) return false
        } else if (value !== 0) return false
      }
      return true
    }, 5_000)
  } catch {
    expect(now).toEqual(before)
  }
}

async function entries(): Promise<Entry[]> {
  let text: string
  try {
    text = await readFile(join(proxy.dir, 'logs', 'access.log'), 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Entry)
}

/** The access-log entry of the request for `path` (each case uses its own). */
async function entryFor(path: string): Promise<Entry> {
  let found: Entry | undefined
  await eventually(async () => {
    found = (await entries()).find((e) => e.path === path)
    return found !== undefined
  })
  return found as Entry
}

/** A healthy request made while a misbehaving one is in flight: it must be served in full. */
async function healthyMeanwhile(path: string): Promise<void> {
  const reply = await send(egress, 'healthy', path)
  expect(reply.status).toBe(200)
  expect(echoed(reply).url).toBe(path)
}

/** Splits a raw HTTP/1.1 response into its status and body (`complete` when its declared length arrived). */
function parseRaw(text: string): { status: number; headers: string; body: string } {
  const end = text.indexOf('\r\n\r\n')
  return { status: Number(text.split(' ')[1]), headers: text.slice(0, end), body: text.slice(end + 4) }
}

/**
 * The HTTP/1.1 upstream's behaviour for a request path. The second request on a keep-alive connection to
 * `/race-*` is met by a close, as when an idle timeout closes a connection just as the proxy reuses it.
 */
function misbehave(socket: Socket, path: string, requestOnConnection: number): void {
  // Closed after the response (no idle pooled connection stays), except where keep-alive is the point.
  const ok = (body: string, keepAlive = false): string =>
    `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${keepAlive ? '' : 'connection: close\r\n'}\r\n${body}`
  if (path.startsWith('/race')) {
    if (requestOnConnection > 1) socket.destroy()
    else socket.write(ok(`served ${path}`, true))
    return
  }
  switch (path.split('?')[0]) {
    case '/warm':
      socket.write(ok('warm', true))
      return
    case '/midbody-length':
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 10000\r\n\r\n${'x'.repeat(1000)}`)
      setTimeout(() => socket.destroy(), 50)
      return
    case '/midbody-chunked':
      socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3e8\r\n${'x'.repeat(1000)}\r\n`)
      setTimeout(() => socket.destroy(), 50)
      return
    case '/reset-before-response':
      socket.resetAndDestroy()
      return
    case '/close-before-response':
      socket.end()
      return
    case '/stall':
      return
    case '/stall-after-headers':
      socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n`)
      return
    case '/garbage':
      socket.end('SSH-2.0-OpenSSH_9.6\r\n\r\n')
      return
    case '/oversized-head':
      socket.write(`HTTP/1.1 200 OK\r\nx-big: ${'b'.repeat(70 * 1024)}\r\ncontent-length: 2\r\n\r\nok`)
      return
    case '/early-hints':
      socket.write(
        `HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n${ok('after early hints')}`,
      )
      return
    case '/early-hints-then-503':
      socket.write(
        `HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbusy`,
      )
      return
    case '/processing':
      socket.write('HTTP/1.1 102 Processing\r\n\r\n')
      setTimeout(() => socket.write(ok('after processing')), 50)
      return
    case '/continue':
      socket.write(`HTTP/1.1 100 Continue\r\n\r\n${ok('after continue')}`)
      return
    default:
      socket.write('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')
  }
}

/** Reads requests off a connection (head, then a content-length body) and hands each to `misbehave`. */
function startH1(): Promise<NetServer> {
  const server = createNetServer((socket: Socket) => {
    h1Connections++
    h1Sockets.add(socket)
    socket.once('close', () => h1Sockets.delete(socket))
    socket.on('error', () => {})
    let buffered = ''
    let count = 0
    socket.on('data', (data: Buffer) => {
      buffered += data.toString('latin1')
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n')
        if (end < 0) return
        const head = buffered.slice(0, end)
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
        if (buffered.length < end + 4 + length) return
        buffered = buffered.slice(end + 4 + length)
        const [method, path] = head.split(' ')
        count++
        h1Requests.push(`${method} ${path}`)
        misbehave(socket, path, count)
      }
    })
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)))
}

/** Paths whose first stream was refused by a GOAWAY (the next one is served). */
const refusedByGoaway = new Set<string>()

/** The HTTP/2 upstream's behaviour for a request path (gRPC methods included). */
function h2Misbehave(stream: ServerHttp2Stream, path: string): void {
  stream.on('error', () => {})
  switch (path) {
    case '/h2-goaway':
    case '/test.Hostile/Goaway':
      if (!refusedByGoaway.has(path)) {
        // GOAWAY naming the stream before this one as the last taken: this stream was never processed.
        refusedByGoaway.add(path)
        stream.session?.goaway(constants.NGHTTP2_NO_ERROR, (stream.id ?? 1) - 2)
        return
      }
      if (path.startsWith('/test.')) grpcOk(stream)
      else {
        stream.respond({ ':status': 200 })
        stream.end('after goaway')
      }
      return
    case '/test.Hostile/ResetBefore':
      stream.close(constants.NGHTTP2_INTERNAL_ERROR)
      return
    case '/test.Hostile/ResetMid':
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' })
      stream.write(grpcFrame({ text: 'first' }))
      setTimeout(() => stream.destroy(new Error('reset mid-stream')), 50)
      return
    case '/h2-reset-before-response':
      stream.close(constants.NGHTTP2_INTERNAL_ERROR)
      return
    case '/h2-reset-midbody':
      stream.respond({ ':status': 200 })
      stream.write('x'.repeat(1000))
      // destroy() sends RST_STREAM INTERNAL_ERROR at once (close(code) would end the stream first).
      setTimeout(() => stream.destroy(new Error('reset mid-body')), 50)
      return
    case '/h2-session-dies-midbody':
      stream.respond({ ':status': 200 })
      stream.write('x'.repeat(1000))
      setTimeout(() => stream.session?.socket.destroy(), 50)
      return
    case '/h2-stall':
      return
    case '/h2-early-hints':
      stream.additionalHeaders({ ':status': 103, link: '</style.css>; rel=preload' })
      stream.respond({ ':status': 200 })
      stream.end('after early hints')
      return
    default:
      stream.respond({ ':status': 200 })
      stream.end(`h2 ${path}`)
  }
}

/** One gRPC message and grpc-status 0 in the trailers. */
function grpcOk(stream: ServerHttp2Stream): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }))
  stream.end(grpcFrame({ text: 'ok' }))
}

beforeAll(async () => {
  healthy = await startUpstream('healthy')
  h1 = await startH1()
  h1Port = (h1.address() as { port: number }).port
  h2 = await startH2Upstream('h2', (stream, headers) => h2Misbehave(stream, String(headers[':path'])))
  ;[egress] = await freePorts(1)
  const port = (name: string, protocol: string, targetPort: number): istio.ServicePort => ({
    number: egress,
    name,
    protocol,
    targetPort,
  })
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.egressSidecar(egress),
      'services.yaml': istio.yamlStream(
        istio.serviceEntry({ name: 'healthy', ports: [port('http', 'HTTP', healthy.port)] }),
        istio.serviceEntry({ name: 'h1', ports: [port('http', 'HTTP', h1Port)] }),
        // The same upstream without a route timeout: only the stream idle timeout ends a stall.
        istio.serviceEntry({ name: 'h1-idle', ports: [port('http', 'HTTP', h1Port)] }),
        // And with a per-try timeout only.
        istio.serviceEntry({ name: 'h1-pertry', ports: [port('http', 'HTTP', h1Port)] }),
        istio.virtualService({
          hosts: ['h1-pertry'],
          http: [{ route: istio.routeTo('h1-pertry'), retries: { attempts: 2, perTryTimeout: '1s' } }],
        }),
        istio.serviceEntry({ name: 'h2', ports: [port('http2', 'HTTP2', h2.port)] }),
        istio.serviceEntry({ name: 'grpc-svc', ports: [port('grpc', 'GRPC', h2.port)] }),
        // A short route timeout for the stalling cases (Istio's default is none).
        istio.virtualService({ hosts: ['h1'], http: [{ route: istio.routeTo('h1'), timeout: '1s' }] }),
        istio.virtualService({ hosts: ['h2'], http: [{ route: istio.routeTo('h2'), timeout: '1s' }] }),
      ),
    },
    extraBootstrap:
      'concurrency: 1\nlimits:\n  streamIdleTimeout: 2s\ntelemetry:\n  accessLog: {path: logs/access.log, encoding: JSON}\n',
  })
  // Warm the healthy pool, one HTTP/2 session and the admin's own handles: the baselines hold them already.
  await healthyMeanwhile('/warm-up')
  expect((await send(egress, 'h2', '/warm')).status).toBe(200)
  await held()
})

afterAll(async () => {
  await proxy?.stop()
  for (const socket of h1Sockets) socket.destroy()
  await Promise.all([
    healthy?.close(),
    h2?.close(),
    new Promise<void>((resolve) => (h1 === undefined ? resolve() : h1.close(() => resolve()))),
  ])
})

/**
 * Runs `misbehaving` with a healthy request in parallel, then checks nothing was left behind; returns
 * the misbehaving result.
 */
async function withChecks<T>(name: string, misbehaving: () => Promise<T>): Promise<T> {
  // An HTTP/2 session stays open for the next request: one is open before each baseline, as after.
  expect((await send(egress, 'h2', '/warm')).status).toBe(200)
  expect((await send(egress, 'grpc-svc', '/warm')).status).toBe(200)
  const before = await held()
  const [result] = await Promise.all([misbehaving(), healthyMeanwhile(`/meanwhile-${name}`)])
  await expectNothingLeft(before)
  expect(proxy.child.exitCode).toBeNull()
  return result
}

describe('HTTP/1.1 upstream dies or resets', () => {
  it('dies mid-body (content-length): the client gets the head, a short body and a closed connection; UC', async () => {
    const text = await withChecks('midbody-length', () =>
      sendRaw(egress, 'GET /midbody-length HTTP/1.1\r\nhost: h1\r\n\r\n', 2_000),
    )
    const reply = parseRaw(text)
    expect(reply.status).toBe(200)
    expect(reply.headers).toMatch(/content-length: 10000/i)
    expect(reply.body.length).toBe(1000)
    const entry = await entryFor('/midbody-length')
    expect(entry.response_flags).toBe('UC')
  })

  it('dies mid-body (chunked): no last chunk reaches the client; UC', async () => {
    const text = await withChecks('midbody-chunked', () =>
      sendRaw(egress, 'GET /midbody-chunked HTTP/1.1\r\nhost: h1\r\n\r\n', 2_000),
    )
    const reply = parseRaw(text)
    expect(reply.status).toBe(200)
    expect(reply.body).toContain('x'.repeat(1000))
    expect(reply.body).not.toMatch(/(^|\r\n)0\r\n\r\n$/)
    expect((await entryFor('/midbody-chunked')).response_flags).toBe('UC')
  })

  it.each([
    ['resets (RST)', '/reset-before-response'],
    ['closes (FIN)', '/close-before-response'],
  ])('%s before any response byte: 503 UC "connection termination"', async (_what, path) => {
    const reply = await withChecks(path.slice(1), () => send(egress, 'h1', path))
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(`${resetBefore}connection termination`)
    const entry = await entryFor(path)
    expect(entry.response_flags).toBe('UC')
    expect(entry.response_code_details).toBe('upstream_reset_before_response_started{connection_termination}')
  })
})

describe('HTTP/1.1 upstream stalls', () => {
  it('no response at all: 504 UT "upstream request timeout" at the route timeout', async () => {
    const started = performance.now()
    const reply = await withChecks('stall', () => send(egress, 'h1', '/stall'))
    expect(reply.status).toBe(504)
    expect(reply.body).toBe('upstream request timeout')
    expect(performance.now() - started).toBeGreaterThan(900)
    expect((await entryFor('/stall')).response_flags).toBe('UT')
  })

  it('after the headers: the route timeout resets the client’s connection mid-body; UT', async () => {
    const text = await withChecks('stall-after-headers', () =>
      sendRaw(egress, 'GET /stall-after-headers HTTP/1.1\r\nhost: h1\r\n\r\n', 3_000),
    )
    const reply = parseRaw(text)
    expect(reply.status).toBe(200)
    expect(reply.body).toContain('first')
    expect(reply.body).not.toMatch(/(^|\r\n)0\r\n\r\n$/)
    expect((await entryFor('/stall-after-headers')).response_flags).toBe('UT')
  })
})

describe('HTTP/1.1 upstream stalls under a per-try timeout', () => {
  it('after the headers: the try’s timeout resets the client’s response (no retry once it started); UT', async () => {
    const started = performance.now()
    const text = await withChecks('pertry-after-headers', () =>
      sendRaw(egress, 'GET /stall-after-headers?pertry HTTP/1.1\r\nhost: h1-pertry\r\n\r\n', 3_000),
    )
    const reply = parseRaw(text)
    expect(reply.status).toBe(200)
    expect(reply.body).not.toMatch(/(^|\r\n)0\r\n\r\n$/)
    expect(performance.now() - started).toBeLessThan(2_900)
    expect(h1Requests.filter((r) => r === 'GET /stall-after-headers?pertry')).toHaveLength(1)
    expect((await entryFor('/stall-after-headers?pertry')).response_flags).toBe('UT')
  })
})

describe('HTTP/1.1 upstream stalls where no route timeout is set (stream idle timeout 2 s)', () => {
  it('no response at all: 504 "stream timeout" (the request was complete), flag SI', async () => {
    const started = performance.now()
    const reply = await withChecks('idle-stall', () => send(egress, 'h1-idle', '/stall?idle'))
    expect(reply.status).toBe(504)
    expect(reply.body).toBe('stream timeout')
    expect(performance.now() - started).toBeGreaterThan(1_800)
    expect((await entryFor('/stall?idle')).response_flags).toBe('SI')
  })

  it('after the headers: the client’s connection is reset mid-body, flag SI (not DC)', async () => {
    const text = await withChecks('idle-stall-after-headers', () =>
      sendRaw(egress, 'GET /stall-after-headers?idle HTTP/1.1\r\nhost: h1-idle\r\n\r\n', 4_000),
    )
    const reply = parseRaw(text)
    expect(reply.status).toBe(200)
    expect(reply.body).toContain('first')
    expect(reply.body).not.toMatch(/(^|\r\n)0\r\n\r\n$/)
    expect((await entryFor('/stall-after-headers?idle')).response_flags).toBe('SI')
  })
})

describe('HTTP/1.1 upstream sends what is not a response', () => {
  it.each([
    ['garbage instead of a status line', '/garbage'],
    ['a head over 60 KiB', '/oversized-head'],
  ])('%s: 502 UPE "protocol error"', async (_what, path) => {
    const reply = await withChecks(path.slice(1), () => send(egress, 'h1', path))
    expect(reply.status).toBe(502)
    expect(reply.body).toBe(`${resetBefore}protocol error`)
    expect((await entryFor(path)).response_flags).toBe('UPE')
  })
})

/** Reads the raw bytes of one exchange so that interim (1xx) responses are seen as sent. */
async function rawExchange(path: string): Promise<string> {
  return sendRaw(egress, `GET ${path} HTTP/1.1\r\nhost: h1\r\nconnection: close\r\n\r\n`, 2_000)
}

describe('HTTP/1.1 upstream sends 1xx before its response', () => {
  // Istio sets proxy_100_continue on every HTTP connection manager (ENABLE_100_CONTINUE_HEADERS, default
  // true), so Envoy forwards 100, 102 and 103 (HeaderUtility::isSpecial1xx) ahead of the final response.
  it('103 Early Hints is forwarded as an interim response, then the real 200 with its body', async () => {
    const text = await withChecks('early-hints', () => rawExchange('/early-hints'))
    expect(text).toMatch(
      /^HTTP\/1\.1 103 Early Hints\r\nlink: <\/style.css>; rel=preload\r\n\r\nHTTP\/1\.1 200 OK\r\n/i,
    )
    expect(text.endsWith('after early hints')).toBe(true)
    const entry = await entryFor('/early-hints')
    expect(entry.response_code).toBe(200)
    expect(entry.response_flags).toBe('-')
  })

  it('102 Processing is forwarded, and the 200 that follows later is the response', async () => {
    const text = await withChecks('processing', () => rawExchange('/processing'))
    expect(text).toMatch(/^HTTP\/1\.1 102 Processing\r\n\r\nHTTP\/1\.1 200 OK\r\n/)
    expect(text.endsWith('after processing')).toBe(true)
    expect((await entryFor('/processing')).response_code).toBe(200)
  })

  it('after a 1xx the response has started: a 503 that follows is not retried (Istio retries a 503)', async () => {
    // router.cc Filter::onUpstream1xxHeaders resets the retry state once a 1xx went downstream.
    const text = await withChecks('early-hints-then-503', () => rawExchange('/early-hints-then-503'))
    expect(text).toMatch(
      /^HTTP\/1\.1 103 Early Hints\r\n[\s\S]*\r\n\r\nHTTP\/1\.1 503 Service Unavailable\r\n/,
    )
    expect(text.match(/ 103 /g)).toHaveLength(1)
    expect(text.endsWith('busy')).toBe(true)
    expect(h1Requests.filter((r) => r === 'GET /early-hints-then-503')).toHaveLength(1)
  })

  it('an unasked 100 Continue: undici drops the connection, so 503 UC and sent once (a departure)', async () => {
    // undici sends no Expect and closes a connection that answers 100 (client-h1.js onHeadersComplete);
    // the failure is not taken for the keep-alive race, so the GET is not sent twice.
    const reply = await withChecks('continue', () => send(egress, 'h1', '/continue'))
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(`${resetBefore}connection termination`)
    expect(h1Requests.filter((r) => r === 'GET /continue')).toHaveLength(1)
    expect((await entryFor('/continue')).response_flags).toBe('UC')
  })

  it('an undici client sees the final 200 of a response preceded by 103', async () => {
    const reply: Reply = await send(egress, 'h1', '/early-hints?undici')
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('after early hints')
  })
})

describe('HTTP/1.1 upstream closes a keep-alive connection just as the proxy reuses it', () => {
  it('a GET is sent again on a new connection: the client gets the response, never 503 UC', async () => {
    // One pooled connection, kept alive after /warm; the next request on it is met by a close.
    expect((await send(egress, 'h1', '/warm')).status).toBe(200)
    const connectionsBefore = h1Connections
    const reply = await withChecks('race-get', () => send(egress, 'h1', '/race-get'))
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('served /race-get')
    expect(h1Requests.filter((r) => r === 'GET /race-get')).toHaveLength(2)
    expect(h1Connections - connectionsBefore).toBeGreaterThanOrEqual(1)
    expect((await entryFor('/race-get')).response_flags).toBe('-')
  })

  it('a POST is not sent twice (the upstream may have acted on it): 503 UC, as Envoy answers', async () => {
    expect((await send(egress, 'h1', '/warm')).status).toBe(200)
    const reply = await withChecks('race-post', () =>
      send(egress, 'h1', '/race-post', { method: 'POST', body: 'once' }),
    )
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(`${resetBefore}connection termination`)
    expect(h1Requests.filter((r) => r === 'POST /race-post')).toHaveLength(1)
    expect((await entryFor('/race-post')).response_flags).toBe('UC')
  })
})

describe('HTTP/2 upstream', () => {
  it('RST_STREAM before the response: 503 UR "remote reset"', async () => {
    const reply = await withChecks('h2-reset-before', () => send(egress, 'h2', '/h2-reset-before-response'))
    expect(reply.status).toBe(503)
    expect(reply.body).toBe(`${resetBefore}remote reset`)
    expect((await entryFor('/h2-reset-before-response')).response_flags).toBe('UR')
  })

  it('RST_STREAM mid-body: the client’s connection is closed short of the body; UR', async () => {
    const text = await withChecks('h2-reset-midbody', () =>
      sendRaw(egress, 'GET /h2-reset-midbody HTTP/1.1\r\nhost: h2\r\n\r\n', 2_000),
    )
    const reply = parseRaw(text)
    expect(reply.status).toBe(200)
    expect(reply.body).not.toMatch(/(^|\r\n)0\r\n\r\n$/)
    expect((await entryFor('/h2-reset-midbody')).response_flags).toBe('UR')
  })

  it('the session dies mid-body: the client’s connection is closed short of the body; UC', async () => {
    const text = await withChecks('h2-session-dies', () =>
      sendRaw(egress, 'GET /h2-session-dies-midbody HTTP/1.1\r\nhost: h2\r\n\r\n', 2_000),
    )
    const reply = parseRaw(text)
    expect(reply.status).toBe(200)
    expect(reply.body).not.toMatch(/(^|\r\n)0\r\n\r\n$/)
    expect((await entryFor('/h2-session-dies-midbody')).response_flags).toBe('UC')
  })

  it('no response at all: 504 UT at the route timeout, and the stream is cancelled', async () => {
    const reply = await withChecks('h2-stall', () => send(egress, 'h2', '/h2-stall'))
    expect(reply.status).toBe(504)
    expect((await entryFor('/h2-stall')).response_flags).toBe('UT')
  })

  it('GOAWAY that leaves the stream untaken: retried on a new session, the client gets the response', async () => {
    const reply = await withChecks('h2-goaway', () => send(egress, 'h2', '/h2-goaway'))
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('after goaway')
    expect((await entryFor('/h2-goaway')).response_flags).toBe('-')
  })

  it('103 before the response: forwarded as an interim response, then the real 200', async () => {
    const text = await withChecks('h2-early-hints', () =>
      sendRaw(egress, 'GET /h2-early-hints HTTP/1.1\r\nhost: h2\r\nconnection: close\r\n\r\n', 2_000),
    )
    expect(text).toMatch(
      /^HTTP\/1\.1 103 Early Hints\r\nlink: <\/style.css>; rel=preload\r\n\r\nHTTP\/1\.1 200 OK\r\n/i,
    )
    expect(text).toContain('after early hints')
    expect((await entryFor('/h2-early-hints')).response_code).toBe(200)
  })
})

describe('gRPC upstream, HTTP/2 end to end', () => {
  let session: ClientHttp2Session
  beforeAll(async () => {
    session = await h2Session(egress)
  })
  afterAll(() => closeSession(session))

  const call = (method: string): Promise<H2Reply> =>
    h2Request(
      session,
      {
        ':method': 'POST',
        ':path': `/test.Hostile/${method}`,
        ':authority': 'grpc-svc',
        'content-type': 'application/grpc',
        te: 'trailers',
      },
      grpcFrame({ text: method }),
    )

  it('RST_STREAM before the response: a trailers-only UNAVAILABLE, as Envoy answers a gRPC call; UR', async () => {
    const reply = await withChecks('grpc-reset-before', () => call('ResetBefore'))
    expect(reply.status).toBe(200)
    expect(reply.headers['grpc-status']).toBe('14')
    expect(reply.headers['grpc-message']).toBe(`${resetBefore}remote reset`)
    expect((await entryFor('/test.Hostile/ResetBefore')).response_flags).toBe('UR')
  })

  it('RST_STREAM mid-stream: the client’s stream is reset too, without trailers; UR', async () => {
    const failure = await withChecks('grpc-reset-mid', () =>
      call('ResetMid').then(
        () => undefined,
        (err) => err,
      ),
    )
    expect(failure).toBeInstanceOf(H2StreamError)
    expect((failure as H2StreamError).rstCode).toBe(constants.NGHTTP2_INTERNAL_ERROR)
    expect((await entryFor('/test.Hostile/ResetMid')).response_flags).toBe('UR')
  })

  it('GOAWAY that leaves the call untaken: sent again on a new session (refused-stream), and it succeeds', async () => {
    const reply = await withChecks('grpc-goaway', () => call('Goaway'))
    expect(reply.status).toBe(200)
    expect(reply.trailers?.['grpc-status']).toBe('0')
    const entry = await entryFor('/test.Hostile/Goaway')
    expect(entry.response_code).toBe(200)
    expect(entry.response_flags).toBe('-')
  })
})

describe('afterwards', () => {
  it('the proxy logged no uncaught errors', () => {
    expect(proxy.child.exitCode).toBeNull()
    expect(proxy.stderr()).not.toMatch(/uncaught|unhandled rejection|ERR_HTTP_HEADERS_SENT/i)
  })
})
