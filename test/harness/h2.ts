// HTTP/2 cleartext peers for scenario tests: an h2c client session with a one-call request, and h2c echo servers.

import { createHash } from 'node:crypto'
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from 'node:http'
import {
  type ClientHttp2Session,
  type ClientSessionOptions,
  connect,
  createServer,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2'
import {
  type AddressInfo,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from 'node:net'
import { Duplex } from 'node:stream'

/** A complete HTTP/2 response as a client sees it. */
export interface H2Reply {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /** Trailers, when the server sent any. */
  readonly trailers: IncomingHttpHeaders | undefined
}

/** A stream that ended without a response: reset by the peer (`rstCode`) or failed locally. */
export class H2StreamError extends Error {
  readonly rstCode: number | undefined
  constructor(message: string, rstCode: number | undefined) {
    super(message)
    this.rstCode = rstCode
  }
}

/** Opens an h2c prior-knowledge session to 127.0.0.1:`port` and waits for the server's SETTINGS. */
export function h2Session(port: number, options: ClientSessionOptions = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`, options)
    const fail = (err: Error): void => {
      session.destroy()
      reject(err)
    }
    const refused = (code: number): void => fail(new Error(`GOAWAY ${code} before SETTINGS`))
    session.once('error', fail)
    session.once('goaway', refused)
    session.once('remoteSettings', () => {
      session.off('error', fail)
      session.off('goaway', refused)
      session.on('error', () => {
        // Errors after the handshake surface on the streams that they fail.
      })
      resolve(session)
    })
  })
}

/** A request body: whole, or chunks written as they come (without content-length). */
export type H2Body = string | Buffer | AsyncIterable<Buffer>

/** Sends one request on `session` and collects the whole response, body and trailers. */
export function h2Request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: H2Body,
): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined })
    let status = 0
    let responseHeaders: IncomingHttpHeaders = {}
    let trailers: IncomingHttpHeaders | undefined
    const chunks: Buffer[] = []
    stream.on('response', (h) => {
      responseHeaders = h
      status = Number(h[':status'])
    })
    stream.on('trailers', (t) => {
      trailers = t
    })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('error', (err: Error) => reject(new H2StreamError(err.message, stream.rstCode)))
    stream.on('close', () => {
      if (status === 0) {
        reject(new H2StreamError(`stream closed without a response (rst ${stream.rstCode})`, stream.rstCode))
        return
      }
      resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks), trailers })
    })
    if (body === undefined) return
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      stream.end(body)
      return
    }
    void (async () => {
      try {
        for await (const chunk of body) {
          if (!stream.write(chunk)) await new Promise((r) => stream.once('drain', r))
        }
        stream.end()
      } catch (err) {
        stream.destroy(err as Error)
      }
    })()
  })
}

/** Closes a session gracefully, destroying it if that takes longer than `ms`. */
export async function closeSession(session: ClientHttp2Session | undefined, ms = 1_000): Promise<void> {
  if (session === undefined || session.destroyed) return
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      session.destroy()
      resolve()
    }, ms)
    session.close(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** What the echo servers report about a request. */
export interface Saw {
  name: string
  /** `2.0` or `1.1`. */
  httpVersion: string
  method: string
  /** The request target: `:path` for HTTP/2, the URL for HTTP/1.1. */
  url: string
  /** All request headers, pseudo-headers included for HTTP/2. */
  headers: Record<string, string | string[]>
  bytes: number
  sha256: string
  /** Milliseconds between the first and the last body chunk: a streamed body arrives spread out. */
  spreadMs: number
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A generated body of `total` bytes in `chunkSize` chunks, each stamped with its index. */
export function* bodyChunks(total: number, chunkSize = 64 * 1024): Generator<Buffer> {
  let index = 0
  for (let sent = 0; sent < total; sent += chunkSize) {
    const chunk = Buffer.alloc(Math.min(chunkSize, total - sent), (index * 7 + 1) & 0xff)
    if (chunk.length >= 4) chunk.writeUInt32BE(index, 0)
    index++
    yield chunk
  }
}

/** What a request body was: its length, its sha256 and how long it took to arrive (first to last byte). */
interface BodyDigest {
  readonly bytes: number
  readonly sha256: string
  readonly spreadMs: number
}

/** A request body as any of node's HTTP servers hands it over. */
interface BodySource {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown
  on(event: 'end', listener: () => void): unknown
}

/** Reads `body` to its end, counting, hashing and timing it, then calls `done`. */
function digestBody(body: BodySource, done: (digest: BodyDigest) => void): void {
  const hash = createHash('sha256')
  let bytes = 0
  let first = 0
  let last = 0
  body.on('data', (c: Buffer) => {
    last = Date.now()
    if (bytes === 0) first = last
    bytes += c.length
    hash.update(c)
  })
  body.on('end', () => done({ bytes, sha256: hash.digest('hex'), spreadMs: last - first }))
}

/** An HTTP/1.1 (node:http) handler that answers 200 with JSON `Saw`, two set-cookie headers and `x-upstream`. */
export function h1Echo(name: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    digestBody(req, (digest) => {
      const saw: Saw = {
        name,
        httpVersion: req.httpVersion,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers as Record<string, string | string[]>,
        ...digest,
      }
      const body = JSON.stringify(saw)
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.writeHead(201, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'x-upstream': name,
      })
      res.end(body)
    })
  }
}

/** An HTTP/2 stream handler (see `startH2Upstream`). */
export type H2Handler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void

/**
 * Echoes the request as JSON `Saw` with status 201, two set-cookie headers and `x-upstream`;
 * a path starting with /trailers also sends trailers (waitForTrailers + sendTrailers).
 */
export function h2Echo(name: string): H2Handler {
  return (stream, headers) => {
    digestBody(stream, (digest) => {
      const url = String(headers[':path'])
      const saw: Saw = {
        name,
        httpVersion: '2.0',
        method: String(headers[':method']),
        url,
        headers: { ...headers } as Record<string, string | string[]>,
        ...digest,
      }
      const body = JSON.stringify(saw)
      const trailers = url.startsWith('/trailers')
      stream.respond(
        {
          ':status': 201,
          'content-type': 'application/json',
          'x-upstream': name,
          'set-cookie': ['a=1', 'b=2'],
        },
        { waitForTrailers: trailers },
      )
      if (trailers) {
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc123', 'x-status': 'done' }))
      }
      stream.end(body)
    })
    stream.on('error', () => {
      // a reset stream is the client's business
    })
  }
}

/** A running h2c server with its connections tracked so that `close` ends promptly. */
export interface H2Upstream {
  readonly server: NetServer
  readonly port: number
  readonly name: string
  /** Request headers seen, in order. */
  readonly seen: IncomingHttpHeaders[]
  close(): Promise<void>
}

function track(server: NetServer, name: string, seen: IncomingHttpHeaders[]): Promise<H2Upstream> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        name,
        seen,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            for (const socket of sockets) socket.destroy()
          }),
      }),
    ),
  )
}

/** An h2c (prior knowledge only) server on 127.0.0.1 that hands every stream to `handler`. */
export function startH2Upstream(name: string, handler: H2Handler = h2Echo(name)): Promise<H2Upstream> {
  const seen: IncomingHttpHeaders[] = []
  const server = createServer()
  server.on('sessionError', () => {
    // a peer that breaks the protocol loses its session, nothing more
  })
  server.on('stream', (stream, headers) => {
    seen.push(headers)
    handler(stream, headers)
  })
  return track(server, name, seen)
}

/** A duplex over `socket` that first yields `head` (bytes already read from it). */
function replaying(socket: Socket, head: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume()
    },
    write(chunk: Buffer, _encoding, done) {
      socket.write(chunk, done)
    },
    final(done) {
      socket.end()
      done()
    },
    destroy(err, done) {
      socket.destroy()
      done(err)
    },
  })
  duplex.push(head)
  socket.on('data', (d: Buffer) => {
    if (!duplex.push(d)) socket.pause()
  })
  socket.on('end', () => duplex.push(null))
  socket.on('close', () => duplex.destroy())
  return duplex
}

/** The compatibility-API request both node:http and node:http2 hand to a request listener. */
interface AnyRequest extends BodySource {
  readonly httpVersion: string
  readonly method?: string
  readonly url?: string
  readonly headers: Record<string, string | string[] | undefined>
}

/** The compatibility-API response both node:http and node:http2 hand to a request listener. */
interface AnyResponse {
  writeHead(status: number, headers: Record<string, string>): unknown
  end(body: string): unknown
}

/**
 * A server that speaks HTTP/1.1 and h2c prior knowledge on one port (the connection preface picks the
 * protocol; node's allowHTTP1 is for TLS only), answering JSON `Saw` so a test sees which version the
 * proxy used.
 */
export function startDualUpstream(name: string): Promise<H2Upstream> {
  const seen: IncomingHttpHeaders[] = []
  const handle = (req: AnyRequest, res: AnyResponse): void => {
    seen.push(req.headers as IncomingHttpHeaders)
    digestBody(req, (digest) => {
      const saw: Saw = {
        name,
        httpVersion: req.httpVersion,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: { ...req.headers } as Record<string, string | string[]>,
        ...digest,
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-upstream': name })
      res.end(JSON.stringify(saw))
    })
  }
  const h1 = createHttp1Server(handle)
  const h2 = createServer(handle)
  h2.on('sessionError', () => {
    // a peer that breaks the protocol loses its session, nothing more
  })
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
  const server = createNetServer((socket) => {
    let head = Buffer.alloc(0)
    const sniff = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk])
      const n = Math.min(head.length, preface.length)
      const isH2 = head.subarray(0, n).equals(preface.subarray(0, n))
      if (isH2 && n < preface.length) return
      socket.off('data', sniff)
      if (!isH2) {
        socket.pause()
        socket.unshift(head)
        h1.emit('connection', socket)
        socket.resume()
        return
      }
      // node:http2 reads a TCP socket's handle directly, past anything unshifted: hand it a JS duplex instead.
      h2.emit('connection', replaying(socket, head))
    }
    socket.on('data', sniff)
    socket.on('error', () => socket.destroy())
  })
  return track(server, name, seen)
}
