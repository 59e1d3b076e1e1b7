// Hostile HTTP/1.1 clients and upstreams against the bootstrap's `limits`: header count and size, the URL, slow or silent heads, idle streams and connections.

import { connect as connectH2, createServer as createH2Server, type Http2Server } from 'node:http2'
import { type AddressInfo, connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send, sendRaw } from '../harness/client.ts'
import { egressSidecar, loopbackService, serviceEntry, yamlStream } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { sumOf } from '../harness/prometheus-text.ts'
import { type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let app: Upstream
/** An h2c upstream: its response heads are `x-big` of `?bytes=N` bytes. */
let h2app: Http2Server
let h2Streams = 0

/** Small limits so every case runs in about a second. */
const limitsBlock = `limits:
  maxRequestHeadersCount: 20
  maxRequestHeadersKb: 8
  maxResponseHeadersCount: 20
  maxResponseHeadersKb: 16
  requestHeadersTimeout: 1s
  streamIdleTimeout: 1s
  idleTimeout: 2s
`

beforeAll(async () => {
  ;[egress] = await freePorts(1)
  app = await startUpstream('app', (req, res) => {
    req.resume()
    if (req.url === '/hang') return
    if (req.url === '/many-headers') {
      const headers: string[] = []
      for (let i = 0; i < 30; i++) headers.push(`x-h${i}`, 'v')
      res.writeHead(200, headers)
      res.end('too many')
      return
    }
    const bytes = /[?&]bytes=(\d+)/.exec(req.url ?? '')?.[1]
    if (bytes !== undefined) {
      res.writeHead(200, { 'x-big': 'b'.repeat(Number(bytes)) })
      res.end('sized')
      return
    }
    if (req.url === '/huge-header') {
      res.writeHead(200, { 'x-huge': 'a'.repeat(70 * 1024) })
      res.end('too big')
      return
    }
    req.on('end', () => res.end('ok'))
  })
  h2app = createH2Server()
  h2app.on('stream', (stream, headers) => {
    h2Streams++
    stream.on('error', () => {})
    const repeated = /^\/h2-repeated\?fields=(\d+)/.exec(String(headers[':path']))?.[1]
    if (repeated !== undefined) {
      // One name, many fields: node's header object joins them into one value, the wire carries each.
      stream.respond({ ':status': 200, 'x-dup': Array.from({ length: Number(repeated) }, (_, i) => `v${i}`) })
      stream.end('repeated')
      return
    }
    const bytes = Number(/[?&]bytes=(\d+)/.exec(String(headers[':path']))?.[1] ?? 0)
    stream.respond({ ':status': 200, 'x-big': 'b'.repeat(bytes) })
    stream.end('sized')
  })
  await new Promise<void>((resolve) => h2app.listen(0, '127.0.0.1', resolve))
  const h2port = (h2app.address() as AddressInfo).port
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': yamlStream(
        loopbackService('app', 80, app.port),
        serviceEntry({
          name: 'h2app',
          ports: [{ number: 80, name: 'http2', protocol: 'HTTP2', targetPort: h2port }],
        }),
      ),
    },
    extraBootstrap: limitsBlock,
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
  await new Promise((resolve) => h2app?.close(resolve))
})

/** Admin /stats as name → value. */
async function stats(): Promise<Map<string, number>> {
  const text = await (await proxy.admin('/stats')).text()
  const map = new Map<string, number>()
  for (const line of text.split('\n')) {
    const at = line.lastIndexOf(': ')
    if (at > 0) map.set(line.slice(0, at), Number(line.slice(at + 2)))
  }
  return map
}

function hcmStat(s: Map<string, number>, name: string): number {
  return s.get(`http.outbound_127.0.0.1_${egress}.${name}`) ?? 0
}

function seen(marker: string): number {
  return app.seen.filter((r) => r.url.includes(marker)).length
}

/** A raw request with `fields` header fields besides Host. */
function requestWithFields(path: string, fields: number, valueBytes = 1): string {
  let head = `GET ${path} HTTP/1.1\r\nhost: app\r\n`
  for (let i = 0; i < fields; i++) head += `x-f${i}: ${'v'.repeat(valueBytes)}\r\n`
  return `${head}\r\n`
}

/** Opens a connection and resolves, when it closes, with what it received and how long it lived. */
function watchClose(socket: Socket): Promise<{ data: string; ms: number }> {
  const started = performance.now()
  let data = ''
  socket.on('data', (d: Buffer) => {
    data += d.toString('latin1')
  })
  socket.on('error', () => {})
  return new Promise((resolve) =>
    socket.once('close', () => resolve({ data, ms: performance.now() - started })),
  )
}

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(egress, '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

describe('request header count (max_headers_count)', () => {
  it('answers 431 to more fields than the limit and closes; the app sees nothing', async () => {
    const before = hcmStat(await stats(), 'downstream_cx_protocol_error')
    // Host plus 20 fields: 21 > 20.
    const reply = await sendRaw(egress, requestWithFields('/count-over', 20))
    expect(reply).toMatch(/^HTTP\/1\.1 431 /)
    expect(reply).toContain('Request Header Fields Too Large')
    expect(reply.toLowerCase()).toContain('connection: close')
    expect(seen('/count-over')).toBe(0)
    expect(hcmStat(await stats(), 'downstream_cx_protocol_error')).toBe(before + 1)
  })

  it('forwards exactly the limit', async () => {
    const reply = await sendRaw(egress, requestWithFields('/count-at', 19))
    expect(reply).toMatch(/^HTTP\/1\.1 200 /)
    expect(seen('/count-at')).toBe(1)
  })

  it('rejects thousands of fields (beyond node:http’s own cap) the same way', async () => {
    const reply = await sendRaw(egress, requestWithFields('/count-flood', 3000))
    expect(reply).toMatch(/^HTTP\/1\.1 431 /)
    expect(seen('/count-flood')).toBe(0)
  })
})

describe('request header size and URL length (max_request_headers_kb)', () => {
  it('answers 431 to a head over the size limit', async () => {
    const reply = await sendRaw(egress, requestWithFields('/size-over', 3, 3000))
    expect(reply).toMatch(/^HTTP\/1\.1 431 /)
    expect(seen('/size-over')).toBe(0)
  })

  it('counts the URL in the head: a 9 KiB path gets 431, as Envoy counts :path in max_request_headers_kb', async () => {
    const reply = await sendRaw(egress, `GET /url-over?${'q'.repeat(9 * 1024)} HTTP/1.1\r\nhost: app\r\n\r\n`)
    expect(reply).toMatch(/^HTTP\/1\.1 431 /)
    expect(seen('/url-over')).toBe(0)
  })
})

describe('request-headers timeout', () => {
  it('closes a connection that sends nothing, and serves another meanwhile', async () => {
    const before = hcmStat(await stats(), 'downstream_rq_header_timeout')
    const silent = await open()
    const closed = watchClose(silent)
    const other = await send(egress, 'app', '/while-silent')
    expect(other.status).toBe(200)
    const { data, ms } = await closed
    expect(data).toBe('')
    expect(ms).toBeGreaterThan(800)
    expect(ms).toBeLessThan(3_000)
    expect(hcmStat(await stats(), 'downstream_rq_header_timeout')).toBe(before + 1)
  })

  it('closes a client that trickles its head one byte at a time; the app sees nothing', async () => {
    const slow = await open()
    const closed = watchClose(slow)
    const head = 'GET /trickle HTTP/1.1\r\nhost: app\r\nx-slow: '
    let i = 0
    const timer = setInterval(() => {
      if (!slow.destroyed) slow.write(head[i++ % head.length] ?? 'x')
    }, 50)
    const { ms } = await closed
    clearInterval(timer)
    expect(ms).toBeGreaterThan(800)
    expect(ms).toBeLessThan(3_000)
    expect(seen('/trickle')).toBe(0)
  })
})

describe('stream idle timeout', () => {
  it('answers 504 stream timeout (flag SI) to a whole request the app never answers, and counts it', async () => {
    const before = hcmStat(await stats(), 'downstream_rq_idle_timeout')
    const started = performance.now()
    const reply = await send(egress, 'app', '/hang')
    const ms = performance.now() - started
    // Envoy's Utility::maybeRequestTimeoutCode: 504 once the request was read whole (envoy#20026).
    expect(reply.status).toBe(504)
    expect(reply.body).toBe('stream timeout')
    expect(ms).toBeGreaterThan(800)
    expect(ms).toBeLessThan(3_000)
    expect(hcmStat(await stats(), 'downstream_rq_idle_timeout')).toBe(before + 1)
  })

  it('answers 408 when the request body stops arriving', async () => {
    const before = hcmStat(await stats(), 'downstream_rq_idle_timeout')
    const socket = await open()
    const closed = watchClose(socket)
    socket.write('POST /hang-upload HTTP/1.1\r\nhost: app\r\ncontent-length: 100\r\n\r\npart')
    const timer = setTimeout(() => socket.destroy(), 4_000)
    const { data, ms } = await closed.finally(() => clearTimeout(timer))
    expect(data).toMatch(/^HTTP\/1\.1 408 /)
    expect(data).toContain('stream timeout')
    // The rest of the body is not waited for: the connection closes with the reply.
    expect(data.toLowerCase()).toContain('connection: close')
    expect(ms).toBeGreaterThan(800)
    expect(ms).toBeLessThan(1_800)
    expect(hcmStat(await stats(), 'downstream_rq_idle_timeout')).toBe(before + 1)
  })
})

describe('idle timeout', () => {
  it('closes a kept-alive connection idle past the limit and counts it', async () => {
    const before = hcmStat(await stats(), 'downstream_cx_idle_timeout')
    const socket = await open()
    const closed = watchClose(socket)
    socket.write('GET /idle HTTP/1.1\r\nhost: app\r\n\r\n')
    const { data, ms } = await closed
    expect(data).toMatch(/^HTTP\/1\.1 200 /)
    expect(ms).toBeGreaterThan(1_800)
    expect(ms).toBeLessThan(4_000)
    expect(hcmStat(await stats(), 'downstream_cx_idle_timeout')).toBeGreaterThanOrEqual(before + 1)
  })

  it('closes an HTTP/2 session idle past the limit with GOAWAY and counts it', async () => {
    // The session's idle timer and its listener are the listener's shared functions (not closures per
    // session): the session still closes on time, and a session closed for it is not counted again.
    const before = hcmStat(await stats(), 'downstream_cx_idle_timeout')
    const started = performance.now()
    const session = connectH2(`http://127.0.0.1:${egress}`)
    session.on('error', () => {})
    const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()))
    const closed = new Promise<number>((resolve) =>
      session.once('close', () => resolve(performance.now() - started)),
    )
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/idle-h2', ':authority': 'app' })
      stream.on('response', (headers) => resolve(Number(headers[':status'])))
      stream.on('error', reject)
      stream.resume()
    })
    expect(status).toBe(200)
    await goaway
    const ms = await closed
    expect(ms).toBeGreaterThan(1_800)
    expect(ms).toBeLessThan(4_000)
    // One more idle period: nothing counts the closed session again.
    await new Promise((resolve) => setTimeout(resolve, 2_200))
    expect(hcmStat(await stats(), 'downstream_cx_idle_timeout')).toBe(before + 1)
  })
})

describe('response headers from the upstream', () => {
  it('answers 502 upstream protocol error to more response fields than the limit', async () => {
    const reply = await send(egress, 'app', '/many-headers')
    expect(reply.status).toBe(502)
    expect(reply.body).toContain('protocol error')
    expect(reply.headers['x-h0']).toBeUndefined()
  })

  it('answers 502 UPE to a head over maxResponseHeadersKb (16 KiB) from an HTTP/1.1 upstream, 200 below it', async () => {
    const clusterStat = 'cluster.outbound|80||app.default.svc.cluster.local.upstream_cx_protocol_error'
    const before = (await stats()).get(clusterStat) ?? 0
    const over = await send(egress, 'app', '/h1-head?bytes=20000')
    expect(over.status).toBe(502)
    expect(over.body).toContain('protocol error')
    expect((await stats()).get(clusterStat)).toBe(before + 1)
    const under = await send(egress, 'app', '/h1-head?bytes=12000')
    expect(under.status).toBe(200)
    expect(under.headers['x-big']).toHaveLength(12000)
  })

  it('answers 502 UPE to a head over the limit from an HTTP/2 upstream, on a fresh session and a settled one', async () => {
    const clusterStat = 'cluster.outbound|80||h2app.default.svc.cluster.local.upstream_cx_protocol_error'
    // The session's first stream goes out before the server acknowledges SETTINGS_MAX_HEADER_LIST_SIZE.
    const first = await send(egress, 'h2app', '/h2-head?bytes=20000')
    expect(first.status).toBe(502)
    expect(first.body).toContain('protocol error')
    const under = await send(egress, 'h2app', '/h2-head?bytes=12000')
    expect(under.status).toBe(200)
    expect(under.headers['x-big']).toHaveLength(12000)
    // Now node:http2 enforces the acknowledged setting itself (ENHANCE_YOUR_CALM on the stream).
    const settled = await send(egress, 'h2app', '/h2-head?bytes=20000')
    expect(settled.status).toBe(502)
    expect(settled.body).toContain('protocol error')
    expect((await stats()).get(clusterStat)).toBe(2)
    expect(h2Streams).toBe(3)
  })

  it('counts an HTTP/2 upstream’s repeated fields one by one (Envoy’s header map holds each), not its joined header object', async () => {
    const over = await send(egress, 'h2app', '/h2-repeated?fields=25')
    expect(over.status).toBe(502)
    expect(over.body).toContain('protocol error')
    const under = await send(egress, 'h2app', '/h2-repeated?fields=10')
    expect(under.status).toBe(200)
    expect(under.body).toBe('repeated')
  })

  it('answers 502 to a response head over 60 KiB', async () => {
    const reply = await send(egress, 'app', '/huge-header')
    expect(reply.status).toBe(502)
    expect(reply.body).toContain('protocol error')
  })

  it('still serves normal requests after all of the above', async () => {
    expect((await send(egress, 'app', '/after')).status).toBe(200)
  })
})

describe('limit stats on admin /stats and the stats port’s /stats/prometheus', () => {
  it('shows every limit the cases above passed, with the same value in both', async () => {
    const s = await stats()
    const prometheus = await (await fetch(`http://127.0.0.1:${proxy.statsPort}/stats/prometheus`)).text()
    for (const stat of [
      'downstream_cx_protocol_error',
      'downstream_rq_header_timeout',
      'downstream_rq_idle_timeout',
      'downstream_cx_idle_timeout',
    ]) {
      const value = hcmStat(s, stat)
      expect(value, stat).toBeGreaterThan(0)
      expect(sumOf(prometheus, `envoy_http_outbound_127_0_0_1_${egress}_${stat}`), stat).toBe(value)
    }
    for (const service of ['app', 'h2app']) {
      const cluster = `outbound|80||${service}.default.svc.cluster.local`
      const value = s.get(`cluster.${cluster}.upstream_cx_protocol_error`) ?? 0
      expect(value, cluster).toBeGreaterThan(0)
      expect(sumOf(prometheus, 'envoy_cluster_upstream_cx_protocol_error', { cluster_name: cluster })).toBe(
        value,
      )
    }
  })
})
