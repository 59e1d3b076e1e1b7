// gRPC test servers and clients without codegen: a JSON-serialized `test.Echo` service on @grpc/grpc-js, plus raw h2.

import {
  type ClientHttp2Session,
  connect,
  constants,
  createServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2'
import type { AddressInfo } from 'node:net'
import {
  Client,
  type ClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ClientWritableStream,
  credentials,
  type handleBidiStreamingCall,
  type handleClientStreamingCall,
  type handleServerStreamingCall,
  type handleUnaryCall,
  Metadata,
  type MethodDefinition,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type StatusObject,
} from '@grpc/grpc-js'

/** What an Echo call sends; the fields steer the server's behaviour. */
export interface EchoRequest {
  readonly text?: string
  /** Wait this long before answering (unary) or before the first message (server streaming). */
  readonly delayMs?: number
  /** Server streaming: how many messages, and the pause between them. */
  readonly count?: number
  readonly intervalMs?: number
  /** Answer with this status instead of a message. */
  readonly fail?: { readonly code: number; readonly details: string }
}

/** What an Echo server answers: who it is, the text, and the request metadata it saw (`-bin` values base64). */
export interface EchoReply {
  readonly server: string
  readonly text: string
  readonly index?: number
  readonly metadata?: Record<string, string>
}

export const echoPath = (method: string): string => `/test.Echo/${method}`

const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value))
const deserialize = <T>(bytes: Buffer): T => JSON.parse(bytes.toString()) as T

function method(
  name: string,
  requestStream: boolean,
  responseStream: boolean,
): MethodDefinition<EchoRequest, EchoReply> {
  return {
    path: echoPath(name),
    requestStream,
    responseStream,
    requestSerialize: serialize,
    requestDeserialize: deserialize<EchoRequest>,
    responseSerialize: serialize,
    responseDeserialize: deserialize<EchoReply>,
    originalName: name,
  }
}

/** The `test.Echo` service: one method of each call kind. */
export const echoService: ServiceDefinition = {
  Unary: method('Unary', false, false),
  ClientStream: method('ClientStream', true, false),
  ServerStream: method('ServerStream', false, true),
  Bidi: method('Bidi', true, true),
}

/** Response header metadata every Echo server sends before its first message. */
export const headerBin = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff])
/** Trailer metadata every Echo server sends with its status, OK or not. */
export const trailerBin = Buffer.from([0xff, 0x00, 0xc3, 0xa9, 0x0a, 0x0d])

function responseHeaders(name: string): Metadata {
  const md = new Metadata()
  md.set('x-server', name)
  md.set('x-header-bin', headerBin)
  return md
}

function trailers(name: string): Metadata {
  const md = new Metadata()
  md.set('x-trailer', `done-by-${name}`)
  md.set('x-trailer-bin', trailerBin)
  return md
}

/** The request metadata as a plain object, `-bin` values in base64. */
function seenMetadata(md: Metadata): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(md.getMap())) {
    out[key] = typeof value === 'string' ? value : value.toString('base64')
  }
  return out
}

export interface EchoServer {
  readonly name: string
  readonly port: number
  /** Calls that reached this server, by method path. */
  readonly calls: string[]
  /** Server-streaming calls that were cancelled before they ended. */
  readonly cancelled: string[]
  close(): Promise<void>
}

/** Starts an Echo server on 127.0.0.1:0; its replies carry `name`. */
export async function startEchoServer(name: string): Promise<EchoServer> {
  const calls: string[] = []
  const cancelled: string[] = []
  const unary: handleUnaryCall<EchoRequest, EchoReply> = (call, callback) => {
    calls.push(echoPath('Unary'))
    const req = call.request
    const answer = (): void => {
      if (req.fail) {
        callback({ code: req.fail.code, details: req.fail.details, metadata: trailers(name) })
        return
      }
      call.sendMetadata(responseHeaders(name))
      callback(
        null,
        { server: name, text: req.text ?? '', metadata: seenMetadata(call.metadata) },
        trailers(name),
      )
    }
    if (!req.delayMs) return answer()
    const timer = setTimeout(answer, req.delayMs)
    call.on('cancelled', () => clearTimeout(timer))
  }
  const clientStream: handleClientStreamingCall<EchoRequest, EchoReply> = (call, callback) => {
    calls.push(echoPath('ClientStream'))
    const texts: string[] = []
    call.sendMetadata(responseHeaders(name))
    call.on('data', (req: EchoRequest) => texts.push(req.text ?? ''))
    call.on('end', () =>
      callback(
        null,
        { server: name, text: texts.join(','), metadata: seenMetadata(call.metadata) },
        trailers(name),
      ),
    )
  }
  const serverStream: handleServerStreamingCall<EchoRequest, EchoReply> = (call) => {
    calls.push(echoPath('ServerStream'))
    const req = call.request
    const count = req.count ?? 1
    call.sendMetadata(responseHeaders(name))
    let index = 0
    let timer: NodeJS.Timeout | undefined
    const next = (): void => {
      if (call.cancelled) return
      if (index === count) {
        call.end(trailers(name))
        return
      }
      call.write({ server: name, text: `${req.text ?? ''}-${index}`, index })
      index++
      timer = setTimeout(next, req.intervalMs ?? 0)
    }
    call.on('cancelled', () => {
      clearTimeout(timer)
      if (index < count) cancelled.push(echoPath('ServerStream'))
    })
    timer = setTimeout(next, req.delayMs ?? 0)
  }
  const bidi: handleBidiStreamingCall<EchoRequest, EchoReply> = (call) => {
    calls.push(echoPath('Bidi'))
    call.sendMetadata(responseHeaders(name))
    let index = 0
    call.on('data', (req: EchoRequest) => {
      call.write({ server: name, text: `echo:${req.text ?? ''}`, index: index++ })
    })
    call.on('end', () => call.end(trailers(name)))
  }
  const server = new Server()
  server.addService(echoService, {
    Unary: unary,
    ClientStream: clientStream,
    ServerStream: serverStream,
    Bidi: bidi,
  })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  )
  return {
    name,
    port,
    calls,
    cancelled,
    close: async () => {
      server.forceShutdown()
    },
  }
}

/** The outcome of any call: the messages received, the response header metadata and the final status. */
export interface CallOutcome {
  readonly replies: EchoReply[]
  readonly headers: Metadata | undefined
  readonly status: StatusObject
  readonly ms: number
}

export interface CallOptions {
  readonly metadata?: Metadata
  /** Deadline in milliseconds from now. */
  readonly deadlineMs?: number
  /** Method path override (for calls to methods no server implements). */
  readonly path?: string
  /** Cancel the call locally (status CANCELLED) after this long, without sending grpc-timeout; default 10 s. */
  readonly guardMs?: number
  /** Server streaming: cancel the call once this many messages arrived. */
  readonly cancelAfter?: number
}

/** A typed client for `test.Echo` over one insecure channel; calls resolve with their outcome, never reject. */
export class EchoClient {
  readonly #client: Client

  constructor(port: number, authority?: string, options: ClientOptions = {}) {
    this.#client = new Client(`127.0.0.1:${port}`, credentials.createInsecure(), {
      ...(authority ? { 'grpc.default_authority': authority } : {}),
      ...options,
    })
  }

  close(): void {
    this.#client.close()
  }

  unary(req: EchoRequest, opts: CallOptions = {}): Promise<CallOutcome> {
    const started = performance.now()
    const replies: EchoReply[] = []
    const call = this.#client.makeUnaryRequest<EchoRequest, EchoReply>(
      opts.path ?? echoPath('Unary'),
      serialize,
      deserialize<EchoReply>,
      req,
      opts.metadata ?? new Metadata(),
      callOptions(opts),
      (err, value) => {
        if (!err && value) replies.push(value)
      },
    )
    return outcome(call, started, replies, opts)
  }

  /** Sends `reqs` one by one (after `gapMs` each) on a client-streaming call. */
  clientStream(reqs: EchoRequest[], opts: CallOptions = {}, gapMs = 0): Promise<CallOutcome> {
    const started = performance.now()
    const replies: EchoReply[] = []
    const call = this.#client.makeClientStreamRequest<EchoRequest, EchoReply>(
      opts.path ?? echoPath('ClientStream'),
      serialize,
      deserialize<EchoReply>,
      opts.metadata ?? new Metadata(),
      callOptions(opts),
      (err, value) => {
        if (!err && value) replies.push(value)
      },
    )
    const done = outcome(call, started, replies, opts)
    void writeAll(call, reqs, gapMs)
    return done
  }

  serverStream(req: EchoRequest, opts: CallOptions = {}): Promise<CallOutcome> {
    const started = performance.now()
    const replies: EchoReply[] = []
    const call = this.#client.makeServerStreamRequest<EchoRequest, EchoReply>(
      opts.path ?? echoPath('ServerStream'),
      serialize,
      deserialize<EchoReply>,
      req,
      opts.metadata ?? new Metadata(),
      callOptions(opts),
    )
    call.on('data', (reply: EchoReply) => {
      replies.push(reply)
      if (replies.length === opts.cancelAfter) call.cancel()
    })
    call.on('error', () => {})
    return outcome(call, started, replies, opts)
  }

  /** A bidirectional call: each request is written only after the previous reply arrived (ping-pong). */
  bidi(reqs: EchoRequest[], opts: CallOptions = {}): Promise<CallOutcome> {
    const started = performance.now()
    const replies: EchoReply[] = []
    const call = this.#client.makeBidiStreamRequest<EchoRequest, EchoReply>(
      opts.path ?? echoPath('Bidi'),
      serialize,
      deserialize<EchoReply>,
      opts.metadata ?? new Metadata(),
      callOptions(opts),
    )
    let sent = 0
    const sendNext = (): void => {
      if (sent < reqs.length) call.write(reqs[sent++])
      else call.end()
    }
    call.on('data', (reply: EchoReply) => {
      replies.push(reply)
      sendNext()
    })
    call.on('error', () => {})
    const done = outcome(call, started, replies, opts)
    sendNext()
    return done
  }
}

/**
 * Resolves with a call's outcome at its status: the response header metadata it saw, the `replies`
 * collected so far and the time since `started`; cancels the call locally after `opts.guardMs`.
 */
function outcome(
  call: ClientUnaryCall | ClientReadableStream<EchoReply> | ClientWritableStream<EchoRequest>,
  started: number,
  replies: EchoReply[],
  opts: CallOptions,
): Promise<CallOutcome> {
  return new Promise((resolve) => {
    let headers: Metadata | undefined
    call.on('metadata', (md: Metadata) => {
      headers = md
    })
    const guard = setTimeout(() => call.cancel(), opts.guardMs ?? 10_000)
    call.on('status', (status: StatusObject) => {
      clearTimeout(guard)
      resolve({ replies, headers, status, ms: performance.now() - started })
    })
  })
}

function callOptions(opts: CallOptions): { deadline?: number } {
  return opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs }
}

async function writeAll(
  call: ClientWritableStream<EchoRequest>,
  reqs: EchoRequest[],
  gapMs: number,
): Promise<void> {
  for (const req of reqs) {
    call.write(req)
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs))
  }
  call.end()
}

/** One gRPC message in the length-prefixed framing (uncompressed). */
export function grpcFrame(message: unknown): Buffer {
  const body = serialize(message)
  const prefix = Buffer.alloc(5)
  prefix.writeUInt32BE(body.length, 1)
  return Buffer.concat([prefix, body])
}

/** What a raw h2 gRPC request saw. */
export interface RawOutcome {
  readonly headers: IncomingHttpHeaders
  /** The response HEADERS frame carried END_STREAM (a trailers-only response). */
  readonly trailersOnly: boolean
  readonly trailers: IncomingHttpHeaders | undefined
  readonly body: Buffer
  readonly ms: number
}

/** Sends one gRPC request on `session` with node:http2 and collects everything, or fails after `limitMs`. */
export function rawGrpc(
  session: ClientHttp2Session,
  authority: string,
  path: string,
  extra: OutgoingHttpHeaders = {},
  message: unknown = { text: 'raw' },
  limitMs = 5_000,
): Promise<RawOutcome> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      ':authority': authority,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...extra,
    })
    const limit = setTimeout(() => {
      stream.close(constants.NGHTTP2_CANCEL)
      reject(new Error(`no complete response within ${limitMs} ms`))
    }, limitMs)
    let headers: IncomingHttpHeaders = {}
    let trailersOnly = false
    let trailers: IncomingHttpHeaders | undefined
    const chunks: Buffer[] = []
    stream.on('response', (h, flags) => {
      headers = h
      trailersOnly = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0
    })
    stream.on('trailers', (t) => {
      trailers = t
    })
    stream.on('data', (d: Buffer) => chunks.push(d))
    stream.on('error', (err) => {
      clearTimeout(limit)
      reject(err)
    })
    stream.on('close', () => {
      clearTimeout(limit)
      if (stream.rstCode !== constants.NGHTTP2_NO_ERROR && headers[':status'] === undefined) {
        reject(new Error(`stream reset with code ${stream.rstCode}`))
        return
      }
      resolve({
        headers,
        trailersOnly,
        trailers,
        body: Buffer.concat(chunks),
        ms: performance.now() - started,
      })
    })
    stream.end(grpcFrame(message))
  })
}

/** An h2c session to 127.0.0.1:`port` (prior knowledge). */
export function h2Session(port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`)
    session.once('connect', () => resolve(session))
    session.once('error', reject)
  })
}

export interface HangingServer {
  readonly port: number
  /** Streams received, by path. */
  readonly seen: string[]
  /** Streams the client closed (reset) without an answer, by path. */
  readonly reset: string[]
  close(): Promise<void>
}

/** A raw h2c server that never answers `/…/Hang…` and answers every other path with a trailers-only grpc-status 0. */
export async function startHangingServer(): Promise<HangingServer> {
  const seen: string[] = []
  const reset: string[] = []
  const sessions = new Set<Http2Session>()
  const server: Http2Server = createServer()
  server.on('session', (session: Http2Session) => {
    sessions.add(session)
    session.on('close', () => sessions.delete(session))
  })
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path'])
    seen.push(path)
    stream.on('error', () => {})
    stream.on('close', () => {
      if (!stream.headersSent) reset.push(path)
    })
    stream.resume()
    if (path.includes('/Hang')) return
    stream.respond(
      { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '0' },
      { endStream: true },
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    reset,
    close: () =>
      new Promise<void>((resolve) => {
        for (const session of sessions) session.destroy()
        server.close(() => resolve())
      }),
  }
}
