// Hostile HTTP/2 clients (frames written by hand over raw sockets, and node:http2) against `limits`: rapid reset, header count, advertised stream limit, idle streams.

import { readFile } from 'node:fs/promises'
import { type ClientHttp2Session, connect as h2connect, type OutgoingHttpHeaders } from 'node:http2'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closeSession, h2Session } from '../harness/h2.ts'
import { egressSidecar, loopbackService, yamlStream } from '../harness/istio.ts'
import { freePorts } from '../harness/ports.ts'
import { sumOf } from '../harness/prometheus-text.ts'
import { eventually, type ProxyProcess, startProxy } from '../harness/proxy-process.ts'
import { startUpstream, type Upstream } from '../harness/upstream.ts'

let proxy: ProxyProcess
let egress: number
let app: Upstream

beforeAll(async () => {
  ;[egress] = await freePorts(1)
  app = await startUpstream('app', (req, res) => {
    req.resume()
    if (req.url?.startsWith('/hang')) return
    if (req.url === '/stall-body') {
      res.write('first')
      return
    }
    if (req.url === '/drip') {
      // A chunk every 300 ms for 2.1 s: longer than the idle timeout, never idle for it.
      let sent = 0
      const timer = setInterval(() => {
        res.write(`chunk${sent}`)
        if (++sent === 7) {
          clearInterval(timer)
          res.end()
        }
      }, 300)
      return
    }
    if (req.url === '/upload') {
      req.on('end', () => res.end('uploaded'))
      return
    }
    // A slow answer, so a client's reset lands before the response starts.
    setTimeout(() => res.end('ok'), req.url === '/slow' ? 300 : 0)
  })
  proxy = await startProxy({
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': yamlStream(loopbackService('app', 80, app.port)),
    },
    extraBootstrap: `telemetry:
  accessLog: {path: logs/access.log, encoding: JSON}
limits:
  maxRequestHeadersCount: 20
  streamIdleTimeout: 1s
  http2:
    maxConcurrentStreams: 64
    prematureResetStreams: 20
    maxInvalidFrames: 5
`,
  })
})

afterAll(async () => {
  await proxy?.stop()
  await app?.close()
})

async function stat(name: string): Promise<number> {
  const text = await (await proxy.admin('/stats')).text()
  const line = text.split('\n').find((l) => l.startsWith(`http.outbound_127.0.0.1_${egress}.${name}: `))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(streamId, 5)
  return Buffer.concat([head, payload])
}

/**
 * GET `path` to host `app`, HPACK from the static table and literals without indexing (no dynamic table);
 * `malformed` adds `connection: close`, a field HTTP/2 forbids (RFC 9113 §8.2.2).
 */
function headersFrame(streamId: number, path: string, malformed = false): Buffer {
  const literal = (index: number, value: string): Buffer =>
    Buffer.concat([Buffer.from([index, value.length]), Buffer.from(value)])
  // :method GET (2), :scheme http (6), :path (4, literal), :authority (1, literal).
  const fields = [Buffer.from([0x82, 0x86]), literal(0x04, path), literal(0x01, 'app')]
  if (malformed)
    fields.push(Buffer.from([0x00, 10]), Buffer.from('connection'), Buffer.from([5]), Buffer.from('close'))
  return frame(0x1, 0x5, streamId, Buffer.concat(fields))
}

function rstStream(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4)
  payload.writeUInt32BE(code)
  return frame(0x3, 0, streamId, payload)
}

interface Received {
  /** The first GOAWAY's error code, when one came. */
  goaway: number | undefined
  /** Streams that got a HEADERS frame back. */
  answered: number
}

/** Reads the server's frames until the connection closes (or `quietMs` without data). */
function readFrames(socket: Socket, quietMs = 2_000): Promise<Received> {
  const received: Received = { goaway: undefined, answered: 0 }
  let buffer = Buffer.alloc(0)
  return new Promise((resolve) => {
    let timer = setTimeout(() => socket.destroy(), quietMs)
    socket.on('data', (chunk: Buffer) => {
      clearTimeout(timer)
      timer = setTimeout(() => socket.destroy(), quietMs)
      buffer = Buffer.concat([buffer, chunk])
      while (buffer.length >= 9) {
        const length = buffer.readUIntBE(0, 3)
        if (buffer.length < 9 + length) break
        const type = buffer[3]
        if (type === 0x7) received.goaway ??= buffer.readUInt32BE(9 + 4)
        if (type === 0x1) received.answered++
        buffer = buffer.subarray(9 + length)
      }
    })
    socket.on('error', () => {})
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(received)
    })
  })
}

function openRaw(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(egress, '127.0.0.1', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** One GET over a fresh node:http2 session; resolves with the status, or the RST_STREAM code. */
function h2get(
  path: string,
  extra: Record<string, string> = {},
): Promise<{ status?: number; rstCode?: number; maxStreams?: number }> {
  return new Promise((resolve) => {
    const session = h2connect(`http://127.0.0.1:${egress}`)
    session.on('error', () => {})
    const stream = session.request({ ':path': path, ':authority': 'app', ...extra })
    let status: number | undefined
    stream.on('response', (headers) => {
      status = Number(headers[':status'])
    })
    stream.on('error', () => {})
    stream.resume()
    stream.on('close', () => {
      const maxStreams = session.remoteSettings.maxConcurrentStreams
      const rstCode = stream.rstCode
      session.close()
      resolve({ status, rstCode, maxStreams })
    })
    stream.end()
  })
}

describe('HTTP/2 limits', () => {
  it('advertises the configured SETTINGS_MAX_CONCURRENT_STREAMS', async () => {
    const reply = await h2get('/settings')
    expect(reply.status).toBe(200)
    expect(reply.maxStreams).toBe(64)
  })

  it('resets a stream with more header fields than the limit; the app sees nothing', async () => {
    const before = await stat('http2.header_overflow')
    const extra: Record<string, string> = {}
    for (let i = 0; i < 20; i++) extra[`x-f${i}`] = 'v'
    const reply = await h2get('/h2-count-over', extra)
    expect(reply.status).toBeUndefined()
    expect(reply.rstCode).toBe(2)
    expect(app.seen.filter((r) => r.url === '/h2-count-over')).toHaveLength(0)
    expect(await stat('http2.header_overflow')).toBe(before + 1)
  })

  it('closes a rapid-reset connection with GOAWAY ENHANCE_YOUR_CALM and serves another meanwhile', async () => {
    const before = await stat('downstream_rq_too_many_premature_resets')
    const socket = await openRaw()
    const received = readFrames(socket)
    const frames: Buffer[] = [preface, frame(0x4, 0, 0, Buffer.alloc(0))]
    for (let i = 0; i < 40; i++) {
      const id = 2 * i + 1
      frames.push(headersFrame(id, '/slow'), rstStream(id, 8))
    }
    socket.write(Buffer.concat(frames))
    const other = await h2get('/during-reset')
    expect(other.status).toBe(200)
    const { goaway } = await received
    expect(goaway).toBe(11)
    expect(await stat('downstream_rq_too_many_premature_resets')).toBe(before + 1)
    // Envoy's guard trips once half of the 20 streams were premature: the rest were never proxied.
    expect(app.seen.filter((r) => r.url === '/slow').length).toBeLessThan(40)
  })

  it('closes a connection past maxInvalidFrames malformed requests and counts http2.rx_messaging_error', async () => {
    const before = await stat('http2.rx_messaging_error')
    const socket = await openRaw()
    const received = readFrames(socket)
    const frames: Buffer[] = [preface, frame(0x4, 0, 0, Buffer.alloc(0))]
    for (let i = 0; i < 20; i++) frames.push(headersFrame(2 * i + 1, '/malformed', true))
    socket.write(Buffer.concat(frames))
    const other = await h2get('/during-malformed')
    expect(other.status).toBe(200)
    const { answered } = await received
    expect(answered).toBe(0)
    expect(app.seen.filter((r) => r.url === '/malformed')).toHaveLength(0)
    expect(await stat('http2.rx_messaging_error')).toBe(before + 1)
  })

  it('keeps a connection whose streams all got their responses', async () => {
    const before = await stat('downstream_rq_too_many_premature_resets')
    const socket = await openRaw()
    const received = readFrames(socket, 1_000)
    const frames: Buffer[] = [preface, frame(0x4, 0, 0, Buffer.alloc(0))]
    for (let i = 0; i < 40; i++) frames.push(headersFrame(2 * i + 1, '/fine'))
    socket.write(Buffer.concat(frames))
    const { goaway, answered } = await received
    expect(goaway).toBeUndefined()
    expect(answered).toBe(40)
    expect(await stat('downstream_rq_too_many_premature_resets')).toBe(before)
  })
})

interface StreamOutcome {
  status?: number
  headers: Record<string, unknown>
  body: string
  rstCode?: number
  ms: number
}

/**
 * Opens a stream on `session` and resolves when it closes. `body`: undefined ends the request with its
 * headers; otherwise each entry is written after waiting its delay, and `end` says whether the request ends.
 */
function h2stream(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: { chunks: [delayMs: number, data: string][]; end: boolean },
): Promise<StreamOutcome> {
  const started = performance.now()
  const stream = session.request({ ':authority': 'app', ...headers }, { endStream: body === undefined })
  const outcome: StreamOutcome = { headers: {}, body: '', ms: 0 }
  stream.on('response', (h) => {
    outcome.status = Number(h[':status'])
    outcome.headers = h
  })
  stream.on('data', (c: Buffer) => {
    outcome.body += c.toString()
  })
  stream.on('error', () => {})
  if (body !== undefined) {
    void (async () => {
      for (const [delayMs, data] of body.chunks) {
        await new Promise((r) => setTimeout(r, delayMs))
        if (stream.destroyed) return
        stream.write(data)
      }
      if (body.end && !stream.destroyed) stream.end()
    })()
  }
  return new Promise((resolve) =>
    stream.on('close', () => {
      outcome.rstCode = stream.rstCode
      outcome.ms = performance.now() - started
      resolve(outcome)
    }),
  )
}

interface LogEntry {
  path: string
  response_code: number
  response_flags: string
  response_code_details: string | null
}

async function logEntry(path: string): Promise<LogEntry> {
  let found: LogEntry | undefined
  await eventually(async () => {
    const text = await readFile(join(proxy.dir, 'logs', 'access.log'), 'utf8').catch(() => '')
    found = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as LogEntry)
      .find((e) => e.path === path)
    return found !== undefined
  })
  return found as LogEntry
}

describe('HTTP/2 stream idle timeout (stream_idle_timeout)', () => {
  let session: ClientHttp2Session

  beforeAll(async () => {
    session = await h2Session(egress)
  })

  afterAll(async () => {
    await closeSession(session)
  })

  it('answers 504 stream timeout (flag SI) to a whole request whose upstream never answers; the session lives on', async () => {
    const before = await stat('downstream_rq_idle_timeout')
    const hung = h2stream(session, { ':path': '/hang-get' })
    // Another stream of the same session is served meanwhile.
    const other = await h2stream(session, { ':path': '/beside-hang' })
    expect(other.status).toBe(200)
    const reply = await hung
    expect(reply.status).toBe(504)
    expect(reply.body).toBe('stream timeout')
    expect(reply.ms).toBeGreaterThan(800)
    expect(reply.ms).toBeLessThan(3_000)
    expect(await stat('downstream_rq_idle_timeout')).toBe(before + 1)
    const entry = await logEntry('/hang-get')
    expect(entry.response_code).toBe(504)
    expect(entry.response_flags).toBe('SI')
    expect(entry.response_code_details).toBe('stream_idle_timeout')
    expect(session.destroyed).toBe(false)
    expect((await h2stream(session, { ':path': '/after-hang' })).status).toBe(200)
  })

  it('answers 408 when the request body stops arriving (Utility::maybeRequestTimeoutCode)', async () => {
    const reply = await h2stream(
      session,
      { ':path': '/hang-upload', ':method': 'POST' },
      { chunks: [[0, 'part']], end: false },
    )
    expect(reply.status).toBe(408)
    expect(reply.body).toBe('stream timeout')
    // Then RST_STREAM NO_ERROR at once: the rest of the request is not waited for.
    expect(reply.rstCode).toBe(0)
    expect(reply.ms).toBeLessThan(1_800)
    expect((await logEntry('/hang-upload')).response_flags).toBe('SI')
  })

  it('tells a gRPC client UNAVAILABLE, as Envoy maps its 504 local reply (trailers-only)', async () => {
    const reply = await h2stream(session, {
      ':path': '/hang-grpc',
      ':method': 'POST',
      'content-type': 'application/grpc',
      te: 'trailers',
    })
    expect(reply.status).toBe(200)
    expect(reply.headers['grpc-status']).toBe('14')
    expect(reply.headers['grpc-message']).toBe('stream timeout')
  })

  it('resets a stream whose response started and then stalled', async () => {
    const before = await stat('downstream_rq_idle_timeout')
    const reply = await h2stream(session, { ':path': '/stall-body' })
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('first')
    expect(reply.rstCode).toBe(2)
    expect(reply.ms).toBeGreaterThan(800)
    expect(reply.ms).toBeLessThan(3_000)
    expect(await stat('downstream_rq_idle_timeout')).toBe(before + 1)
    expect((await logEntry('/stall-body')).response_flags).toContain('SI')
  })

  it('keeps a stream whose response keeps coming, past the timeout', async () => {
    const reply = await h2stream(session, { ':path': '/drip' })
    expect(reply.status).toBe(200)
    expect(reply.rstCode).toBe(0)
    expect(reply.body).toBe('chunk0chunk1chunk2chunk3chunk4chunk5chunk6')
    expect(reply.ms).toBeGreaterThan(1_800)
  })

  it('keeps a stream whose request body keeps coming, past the timeout', async () => {
    const chunks: [number, string][] = Array.from({ length: 7 }, (_, i) => [300, `part${i}`])
    const reply = await h2stream(session, { ':path': '/upload', ':method': 'POST' }, { chunks, end: true })
    expect(reply.status).toBe(200)
    expect(reply.body).toBe('uploaded')
    expect(reply.ms).toBeGreaterThan(1_800)
  })
})

describe('HTTP/2 limit stats on admin /stats and the stats port’s /stats/prometheus', () => {
  it('shows every limit the cases above passed, with the same value in both', async () => {
    const prometheus = await (await fetch(`http://127.0.0.1:${proxy.statsPort}/stats/prometheus`)).text()
    for (const name of [
      'http2.header_overflow',
      'downstream_rq_too_many_premature_resets',
      'downstream_rq_idle_timeout',
      'http2.rx_messaging_error',
    ]) {
      const value = await stat(name)
      expect(value, name).toBeGreaterThan(0)
      const metric = `envoy_http_outbound_127_0_0_1_${egress}_${name.replace('.', '_')}`
      expect(sumOf(prometheus, metric), name).toBe(value)
    }
  })
})
