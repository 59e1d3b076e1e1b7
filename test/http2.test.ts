// Scenario: HTTP/2 cleartext (prior knowledge) through egress and ingress listeners, to HTTP/1.1 and h2c upstreams.

import { execFile } from 'node:child_process'
import { type IncomingHttpHeaders as H1Headers, request as httpRequest } from 'node:http'
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  bodyChunks,
  closeSession,
  H2StreamError,
  type H2Upstream,
  h1Echo,
  h2Echo,
  h2Request,
  h2Session,
  type Saw,
  sha256,
  startDualUpstream,
  startH2Upstream,
} from './harness/h2.ts'
import * as istio from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { answerAfter, startUpstream, type Upstream } from './harness/upstream.ts'

const KiB = 1024
const MiB = 1024 * KiB
const connectionFailure =
  'upstream connect error or disconnect/reset before headers. reset reason: connection failure'
/** Hop-by-hop headers that must never reach an upstream (`connection` is checked apart). */
const hopByHop = ['keep-alive', 'proxy-connection', 'upgrade', 'http2-settings', 'x-hop']

let proxy: ProxyProcess
/** HTTP/1.1 echo upstream. */
let web: Upstream
/** h2c echo upstream (sends trailers on /trailers…). */
let h2svc: H2Upstream
/** HTTP/1.1 + h2c upstream that reports the version it was spoken to with. */
let dual: H2Upstream
/** Egress port declared HTTP. */
let egress: number
/** Egress port with no protocol: sniffed. */
let sniffed: number
/** Ingress ports: HTTP to `web`, HTTP2 to `h2svc`, undeclared to `dual`. */
let ingressH1: number
let ingressH2: number
let ingressAny: number
/** A loopback port nobody listens on. */
let closedPort: number
const sessions: ClientHttp2Session[] = []

/** A STATIC ServiceEntry with one port per [number, protocol, targetPort]. */
function service(name: string, ports: [number, string, number][]): string {
  return istio.serviceEntry({
    name,
    ports: ports.map(([number, protocol, targetPort]) => ({
      number,
      name: `p${number}`,
      protocol,
      targetPort,
    })),
  })
}

/** A DestinationRule for `host` with these `connectionPool.http` settings. */
function httpPool(host: string, http: istio.Fields): string {
  return istio.destinationRule({ host, trafficPolicy: { connectionPool: { http } } })
}

async function session(port: number, maxSendHeaderBlockLength?: number): Promise<ClientHttp2Session> {
  const s = await h2Session(port, maxSendHeaderBlockLength === undefined ? {} : { maxSendHeaderBlockLength })
  sessions.push(s)
  return s
}

function saw(reply: { body: Buffer | string }): Saw {
  return JSON.parse(reply.body.toString()) as Saw
}

interface H1Reply {
  status: number
  headers: H1Headers
  body: string
}

/** An HTTP/1.1 request over node:http (which, unlike undici, lets a test send hop-by-hop headers). */
function h1Request(
  port: number,
  host: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {},
): Promise<H1Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method: init.method ?? 'GET',
        agent: false,
        headers: { host, ...init.headers },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(init.body)
  })
}

/** `curl -sv --http2-prior-knowledge`: the response body and the status line curl reports. */
async function curlH2(
  port: number,
  host: string,
  path: string,
): Promise<{ body: string; statusLine: string }> {
  const { stdout, stderr } = await promisify(execFile)(
    'curl',
    [
      '-sv',
      '--http2-prior-knowledge',
      '--max-time',
      '10',
      '-H',
      `Host: ${host}`,
      `http://127.0.0.1:${port}${path}`,
    ],
    { encoding: 'utf8' },
  )
  const statusLine = stderr.split('\n').find((l) => l.startsWith('< HTTP/')) ?? stderr
  return { body: stdout, statusLine: statusLine.trim() }
}

/** Writes `count` chunks of `size` bytes `gapMs` apart: a body that arrives over time. */
async function* trickle(count: number, size: number, gapMs: number): AsyncGenerator<Buffer> {
  for (const chunk of bodyChunks(count * size, size)) {
    await new Promise((r) => setTimeout(r, gapMs))
    yield chunk
  }
}

/** No client hop-by-hop header reached the upstream; `connection` may only name the proxy's own keep-alive. */
function expectNoHopByHop(headers: Record<string, unknown>): void {
  for (const name of hopByHop) expect(headers[name], name).toBeUndefined()
  expect([undefined, 'keep-alive']).toContain(headers.connection)
}

beforeAll(async () => {
  web = await startUpstream('web', h1Echo('web'))
  h2svc = await startH2Upstream('h2svc', h2Echo('h2svc'))
  dual = await startDualUpstream('dual')
  ;[egress, sniffed, ingressH1, ingressH2, ingressAny, closedPort] = await freePorts(6)
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': istio.sidecar({
        ingress: [
          istio.loopbackIngress(ingressH1, web.port, 'HTTP', 'http'),
          istio.loopbackIngress(ingressH2, h2svc.port, 'HTTP2', 'http2'),
          istio.loopbackIngress(ingressAny, dual.port, undefined, 'any'),
        ],
        egress: [{ port: egress, protocol: 'HTTP', name: 'http' }, { port: sniffed }],
      }),
      'services.yaml': istio.yamlStream(
        service('web', [
          [egress, 'HTTP', web.port],
          [sniffed, 'HTTP', web.port],
        ]),
        service('h2svc', [
          [egress, 'HTTP2', h2svc.port],
          [sniffed, 'HTTP2', h2svc.port],
        ]),
        service('upg', [[egress, 'HTTP', dual.port]]),
        service('ucp', [[egress, 'HTTP', dual.port]]),
        service('down', [[egress, 'HTTP', closedPort]]),
        httpPool('upg', { h2UpgradePolicy: 'UPGRADE' }),
        httpPool('ucp', { useClientProtocol: true }),
      ),
    },
  })
})

afterEach(async () => {
  await Promise.all(sessions.splice(0).map((s) => closeSession(s)))
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([web?.close(), h2svc?.close(), dual?.close()])
})

const oneMiB = Buffer.alloc(MiB, 0x5a)

describe.each([
  { listener: 'egress', port: () => egress, authority: () => `web:${egress}` },
  { listener: 'ingress', port: () => ingressH1, authority: () => 'reviews.default.svc.cluster.local:9080' },
])('h2c client → $listener listener → HTTP/1.1 upstream', ({ port, authority }) => {
  it('forwards method, path+query, headers and a 1 MiB body; returns status, headers and body', async () => {
    const s = await session(port())
    const reply = await h2Request(
      s,
      {
        ':method': 'POST',
        ':path': '/items/7?sort=asc&q=a%20b',
        ':authority': authority(),
        'content-type': 'application/octet-stream',
        'content-length': String(oneMiB.length),
        'x-multi': ['one', 'two'],
        'user-agent': 'h2-test',
      },
      oneMiB,
    )
    expect(reply.status).toBe(201)
    expect(reply.headers['x-upstream']).toBe('web')
    expect(reply.headers['content-type']).toBe('application/json')
    expect(reply.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    const e = saw(reply)
    expect(e.httpVersion).toBe('1.1')
    expect(e.method).toBe('POST')
    expect(e.url).toBe('/items/7?sort=asc&q=a%20b')
    expect(e.headers.host).toBe(authority())
    expect(e.headers['x-multi']).toBe('one, two')
    expect(e.headers['user-agent']).toBe('h2-test')
    expect(e.headers['x-forwarded-for']).toBeUndefined()
    expect(e.headers['x-forwarded-proto']).toBe('http')
    expect(e.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    expectNoHopByHop(e.headers)
    expect(Object.keys(e.headers).filter((h) => h.startsWith(':'))).toEqual([])
    expect(e.bytes).toBe(MiB)
    expect(e.sha256).toBe(sha256(oneMiB))
  })

  it('streams a request body that arrives over time (no content-length)', async () => {
    const s = await session(port())
    const reply = await h2Request(
      s,
      { ':method': 'PUT', ':path': '/stream', ':authority': authority() },
      trickle(8, 10 * KiB, 25),
    )
    expect(reply.status).toBe(201)
    const e = saw(reply)
    expect(e.method).toBe('PUT')
    expect(e.bytes).toBe(80 * KiB)
    expect(e.sha256).toBe(sha256(Buffer.concat([...bodyChunks(80 * KiB, 10 * KiB)])))
    // Eight chunks 25 ms apart reach the upstream as they come, not buffered into one.
    expect(e.spreadMs).toBeGreaterThanOrEqual(100)
  })

  it('serves curl --http2-prior-knowledge', async () => {
    const { body, statusLine } = await curlH2(port(), authority(), '/curl?x=1')
    expect(statusLine).toMatch(/^< HTTP\/2 201/)
    const e = JSON.parse(body) as Saw
    expect(e.url).toBe('/curl?x=1')
    expect(e.headers.host).toBe(authority())
  })
})

describe.each([
  { listener: 'egress', port: () => egress, authority: 'h2svc' },
  { listener: 'ingress', port: () => ingressH2, authority: 'ratings:9080' },
])('h2c client → $listener listener → h2c upstream', ({ port, authority }) => {
  it('forwards pseudo-headers, headers and a 1 MiB body; returns headers, body and trailers', async () => {
    const s = await session(port())
    const reply = await h2Request(
      s,
      {
        ':method': 'POST',
        ':path': '/trailers/x?y=1',
        ':authority': authority,
        te: 'trailers',
        'content-type': 'application/octet-stream',
        'x-multi': ['one', 'two'],
      },
      oneMiB,
    )
    expect(reply.status).toBe(201)
    expect(reply.headers['x-upstream']).toBe('h2svc')
    expect(reply.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    expect(reply.trailers).toMatchObject({ 'x-checksum': 'abc123', 'x-status': 'done' })
    const e = saw(reply)
    expect(e.httpVersion).toBe('2.0')
    expect(e.headers[':method']).toBe('POST')
    expect(e.headers[':path']).toBe('/trailers/x?y=1')
    expect(e.headers[':authority']).toBe(authority)
    expect(e.headers[':scheme']).toBe('http')
    expect(e.headers.te).toBe('trailers')
    expect(e.headers['x-multi']).toBe('one, two')
    expect(e.headers['x-forwarded-for']).toBeUndefined()
    expectNoHopByHop(e.headers)
    expect(e.bytes).toBe(MiB)
    expect(e.sha256).toBe(sha256(oneMiB))
  })

  it('streams a request body that arrives over time', async () => {
    const s = await session(port())
    const reply = await h2Request(
      s,
      { ':method': 'POST', ':path': '/stream', ':authority': authority },
      trickle(8, 10 * KiB, 25),
    )
    expect(reply.status).toBe(201)
    expect(saw(reply).bytes).toBe(80 * KiB)
    expect(saw(reply).spreadMs).toBeGreaterThanOrEqual(100)
    expect(reply.trailers).toBeUndefined()
  })

  it('translates an HTTP/1.1 request (Host → :authority, hop-by-hop dropped)', async () => {
    const body = Buffer.from('hello from http/1.1')
    const reply = await h1Request(port(), authority, '/from-h1?z=9', {
      method: 'POST',
      headers: {
        connection: 'keep-alive, x-hop',
        'x-hop': 'secret',
        'keep-alive': 'timeout=5',
        'x-visible': 'yes',
        'content-type': 'text/plain',
        'content-length': String(body.length),
      },
      body,
    })
    expect(reply.status).toBe(201)
    expect(reply.headers['x-upstream']).toBe('h2svc')
    expect(reply.headers['set-cookie']).toEqual(['a=1', 'b=2'])
    const e = saw(reply)
    expect(e.httpVersion).toBe('2.0')
    expect(e.headers[':method']).toBe('POST')
    expect(e.headers[':path']).toBe('/from-h1?z=9')
    expect(e.headers[':authority']).toBe(authority)
    expect(e.headers[':scheme']).toBe('http')
    expect(e.headers.host).toBeUndefined()
    expect(e.headers['x-visible']).toBe('yes')
    expectNoHopByHop(e.headers)
    expect(e.sha256).toBe(sha256(body))
  })

  it('serves curl --http2-prior-knowledge', async () => {
    const { body, statusLine } = await curlH2(port(), authority, '/curl')
    expect(statusLine).toMatch(/^< HTTP\/2 201/)
    expect((JSON.parse(body) as Saw).headers[':authority']).toBe(authority)
  })
})

describe('upstream protocol selection', () => {
  it('h2UpgradePolicy UPGRADE speaks HTTP/2 to an HTTP port, for HTTP/1.1 and HTTP/2 clients', async () => {
    const fromH1 = saw(await h1Request(egress, 'upg', '/upgrade'))
    expect(fromH1.httpVersion).toBe('2.0')
    expect(fromH1.headers[':authority']).toBe('upg')
    const s = await session(egress)
    const fromH2 = saw(await h2Request(s, { ':path': '/upgrade', ':authority': 'upg' }))
    expect(fromH2.httpVersion).toBe('2.0')
  })

  it('useClientProtocol speaks the client’s version', async () => {
    const fromH1 = saw(await h1Request(egress, 'ucp', '/client'))
    expect(fromH1.httpVersion).toBe('1.1')
    expect(fromH1.headers.host).toBe('ucp')
    const s = await session(egress)
    const fromH2 = saw(await h2Request(s, { ':path': '/client', ':authority': 'ucp' }))
    expect(fromH2.httpVersion).toBe('2.0')
    expect(fromH2.headers[':authority']).toBe('ucp')
  })

  it('plain HTTP port without a DestinationRule speaks HTTP/1.1 even to an h2 client', async () => {
    const s = await session(egress)
    expect(saw(await h2Request(s, { ':path': '/', ':authority': 'web' })).httpVersion).toBe('1.1')
  })

  it('an undeclared ingress port forwards with the client’s protocol', async () => {
    expect(saw(await h1Request(ingressAny, 'app', '/any')).httpVersion).toBe('1.1')
    const s = await session(ingressAny)
    const e = saw(await h2Request(s, { ':path': '/any', ':authority': 'app' }))
    expect(e.httpVersion).toBe('2.0')
    expect(e.headers[':authority']).toBe('app')
  })
})

describe('multiplexing on one session', () => {
  it('answers 100 concurrent streams, half to an HTTP/1.1 and half to an h2c upstream', async () => {
    const s = await session(egress)
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        h2Request(s, { ':path': `/n/${i}`, ':authority': i % 2 === 0 ? 'web' : 'h2svc' }),
      ),
    )
    replies.forEach((reply, i) => {
      expect(reply.status).toBe(201)
      const e = saw(reply)
      expect(e.name).toBe(i % 2 === 0 ? 'web' : 'h2svc')
      expect(e.url).toBe(`/n/${i}`)
    })
  })

  it('one stream’s upstream connect failure (503 UF) and an unknown host (404) leave the others intact', async () => {
    const s = await session(egress)
    const ok = Array.from({ length: 20 }, (_, i) =>
      h2Request(s, { ':path': `/ok/${i}`, ':authority': i % 2 === 0 ? 'web' : 'h2svc' }),
    )
    const failed = h2Request(s, { ':path': '/down', ':authority': 'down' })
    const unknown = h2Request(s, { ':path': '/nowhere', ':authority': 'no-such-host' })
    const down = await failed
    expect(down.status).toBe(503)
    expect(down.body.toString()).toBe(connectionFailure)
    expect((await unknown).status).toBe(404)
    for (const [i, reply] of (await Promise.all(ok)).entries()) {
      expect(reply.status).toBe(201)
      expect(saw(reply).url).toBe(`/ok/${i}`)
    }
    expect(s.closed).toBe(false)
    expect((await h2Request(s, { ':path': '/after', ':authority': 'web' })).status).toBe(201)
  })
})

describe('protocol detection', () => {
  it('an undeclared egress port serves h2c prior knowledge (to HTTP/1.1 and h2c upstreams)', async () => {
    const s = await session(sniffed)
    const toWeb = await h2Request(s, { ':path': '/sniffed?a=1', ':authority': 'web' })
    expect(toWeb.status).toBe(201)
    expect(saw(toWeb)).toMatchObject({ name: 'web', url: '/sniffed?a=1', httpVersion: '1.1' })
    const toH2 = await h2Request(s, { ':path': '/trailers/sniffed', ':authority': 'h2svc' })
    expect(toH2.status).toBe(201)
    expect(saw(toH2)).toMatchObject({ name: 'h2svc', url: '/trailers/sniffed', httpVersion: '2.0' })
    expect(toH2.trailers).toMatchObject({ 'x-status': 'done' })
    const { statusLine } = await curlH2(sniffed, 'web', '/curl')
    expect(statusLine).toMatch(/^< HTTP\/2 201/)
  })
})

describe('SETTINGS', () => {
  it('advertises max concurrent streams 1000, a 60 KiB header list and a 1 MiB stream window', async () => {
    for (const port of [egress, ingressH1]) {
      const s = await session(port)
      expect(s.remoteSettings.maxConcurrentStreams).toBe(1000)
      expect(s.remoteSettings.maxHeaderListSize).toBe(60 * KiB)
      expect(s.remoteSettings.initialWindowSize).toBe(MiB)
    }
  })

  it('accepts 40 KiB of request headers, refuses over 60 KiB (431 or a stream reset), keeps the session', async () => {
    // The h2c upstream takes headers of any size, so a refusal can only come from the proxy.
    const s = await session(egress, MiB)
    const headers = (path: string, kib: number): OutgoingHttpHeaders => {
      const h: OutgoingHttpHeaders = { ':path': path, ':authority': 'h2svc' }
      for (let i = 0; i < kib / 10; i++) h[`x-big-${i}`] = String.fromCharCode(97 + i).repeat(10 * KiB)
      return h
    }
    const fits = await h2Request(s, headers('/fits', 40))
    expect(fits.status).toBe(201)
    expect(saw(fits).headers['x-big-3']).toHaveLength(10 * KiB)
    const outcome = await h2Request(s, headers('/big', 70)).then(
      (reply) => `status ${reply.status}`,
      (err: unknown) => (err instanceof H2StreamError ? 'reset' : `error ${String(err)}`),
    )
    expect(['status 431', 'reset']).toContain(outcome)
    expect(h2svc.seen.some((h) => h[':path'] === '/big')).toBe(false)
    const next = await h2Request(s, { ':path': '/after-big', ':authority': 'h2svc' })
    expect(next.status).toBe(201)
    expect(saw(next).url).toBe('/after-big')
    expect(s.closed).toBe(false)
  })
})

describe('drain', () => {
  let drained: ProxyProcess | undefined
  let slow: Upstream | undefined

  afterAll(async () => {
    await drained?.stop()
    await slow?.close()
  })

  it('SIGTERM sends GOAWAY on ingress sessions and lets in-flight streams finish; a new ingress session is served, then gets GOAWAY; egress sessions serve on', async () => {
    slow = await startUpstream('slow', answerAfter(1_000, 'finished'))
    const [out, inn] = await freePorts(2)
    drained = await startProxy({
      drain: '3s',
      resources: {
        'sidecar.yaml': istio.sidecar({
          ingress: [istio.loopbackIngress(inn, slow.port, 'HTTP', 'http')],
          egress: [{ port: out, protocol: 'HTTP', name: 'http' }],
        }),
        'slow.yaml': service('slow', [[out, 'HTTP', slow.port]]),
      },
    })
    const [egress, ingress] = await Promise.all([session(out), session(inn)])
    let egressGoaway = false
    egress.once('goaway', () => {
      egressGoaway = true
    })
    const ingressGoaway = new Promise<number>((resolve) =>
      ingress.once('goaway', (code: number) => resolve(code)),
    )
    const replies = [egress, ingress].map((s) => h2Request(s, { ':path': '/work', ':authority': 'slow' }))
    await new Promise((r) => setTimeout(r, 300))
    drained.child.kill('SIGTERM')
    expect(await ingressGoaway).toBe(0)
    // Envoy's graceful drain (Istio's drain_listeners?inboundonly&graceful): the ingress listener still
    // accepts, so a client that connects now (its endpoint removal not loaded yet) is served its stream,
    // then gets GOAWAY, and its session closes.
    const late = await session(inn)
    const lateGoaway = new Promise<number>((resolve) => late.once('goaway', (code: number) => resolve(code)))
    const lateClosed = new Promise<void>((resolve) => late.once('close', resolve))
    const lateReply = await h2Request(late, { ':path': '/late', ':authority': 'slow' })
    expect(lateReply.status).toBe(200)
    expect(lateReply.body.toString()).toBe('finished')
    expect(await lateGoaway).toBe(0)
    await lateClosed
    for (const reply of replies) {
      const r = await reply
      expect(r.status).toBe(200)
      expect(r.body.toString()).toBe('finished')
    }
    // Outbound is not drained (Istio drains inbound only): a new stream on the egress session is served.
    const again = await h2Request(egress, { ':path': '/again', ':authority': 'slow' })
    expect(again.status).toBe(200)
    expect(egressGoaway).toBe(false)
    expect(await drained.exited).toBe(0)
  })
})
