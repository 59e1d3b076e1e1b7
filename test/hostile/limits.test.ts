// Hostile HTTP/1.1 clients and upstreams against the bootstrap's `limits`: header count and size, the URL, slow or silent heads, idle streams and connections.

import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send, sendRaw } from '../harness/client.ts'
import { egressSidecar, loopbackService, yamlStream } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let app: Upstream

/** Small limits so every case runs in about a second. */
const limitsBlock = `limits:
  maxRequestHeadersCount: 20
  maxRequestHeadersKb: 8
  maxResponseHeadersCount: 20
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
    if (req.url === '/huge-header') {
      res.writeHead(200, { 'x-huge': 'a'.repeat(70 * 1024) })
      res.end('too big')
      return
    }
    req.on('end', () => res.end('ok'))
  })
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': yamlStream(loopbackService('app', 80, app.port)),
    },
    extraBootstrap: limitsBlock,
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
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
  it('answers 504 stream timeout (flag SI) when the app never answers a complete request, and counts it', async () => {
    const before = hcmStat(await stats(), 'downstream_rq_idle_timeout')
    const started = performance.now()
    const reply = await send(egress, 'app', '/hang')
    const ms = performance.now() - started
    // Envoy's Utility::maybeRequestTimeoutCode: 504 once the request was received whole, 408 before.
    expect(reply.status).toBe(504)
    expect(reply.body).toBe('stream timeout')
    expect(ms).toBeGreaterThan(800)
    expect(ms).toBeLessThan(3_000)
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
})

describe('response headers from the upstream', () => {
  it('answers 502 upstream protocol error to more response fields than the limit', async () => {
    const reply = await send(egress, 'app', '/many-headers')
    expect(reply.status).toBe(502)
    expect(reply.body).toContain('protocol error')
    expect(reply.headers['x-h0']).toBeUndefined()
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
