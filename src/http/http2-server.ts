// The downstream HTTP/2 server of one listener: h2c with prior knowledge, or h2 after TLS ALPN; every stream enters the filter chain.

import {
  createServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2'
import type { Socket } from 'node:net'
import { log } from '../telemetry/log.ts'
import type { HttpListener } from './http-listener.ts'
import { Http2Request } from './http2-request.ts'
import { Http2Response } from './http2-response.ts'
import { RequestContext } from './request-context.ts'
import { startRequest } from './request-start.ts'

/** SETTINGS the proxy advertises; Envoy's defaults are unbounded, these keep one client from hoarding memory. */
export const http2Settings = {
  maxConcurrentStreams: 1000,
  /** Envoy's limit on request headers, as for HTTP/1.1 (60 KiB). */
  maxHeaderListSize: 60 * 1024,
  /** Per-stream receive window: enough for a fast upload, bounded per stream. */
  initialWindowSize: 1024 * 1024,
  /** RFC 8441: WebSocket over HTTP/2 (extended CONNECT with `:protocol`). */
  enableConnectProtocol: true,
} as const

/** A session with no frame either way for this long is closed gracefully (as HTTP/1.1 keep-alive). */
const idleTimeoutMs = 300_000

/** The connection-level receive window (all streams together). */
const connectionWindowSize = 16 * 1024 * 1024

export class Http2Downstream {
  readonly #listener: HttpListener
  readonly #server: Http2Server
  readonly #sessions = new Set<ServerHttp2Session>()

  constructor(listener: HttpListener) {
    this.#listener = listener
    this.#server = createServer({
      settings: http2Settings,
      // node:http2 refuses new streams once a session buffers more than this (MB); streams are flow-controlled.
      maxSessionMemory: 64,
    })
    this.#server.on('session', this.#onSession)
    this.#server.on('stream', this.#onStream)
  }

  /** Serves a connection whose first bytes (still unread in its buffer) are the HTTP/2 preface or TLS-ALPN h2. */
  serve(socket: Socket): void {
    // node:http2 reads what is buffered in the socket when the session starts: do not resume it here.
    this.#server.emit('connection', socket)
  }

  get sessions(): number {
    return this.#sessions.size
  }

  /** GOAWAY to every client: streams in flight finish, new ones go elsewhere; sessions close when idle. */
  drain(): void {
    for (const session of this.#sessions) if (!session.closed) session.close()
  }

  /** Closes every session now (after the drain time). */
  destroy(): void {
    for (const session of this.#sessions) session.destroy()
  }

  readonly #onSession = (session: ServerHttp2Session): void => {
    this.#sessions.add(session)
    session.once('close', () => this.#sessions.delete(session))
    session.on('error', (err: Error) =>
      log.debug(`listener ${this.#listener.model.name}: h2 session: ${err.message}`),
    )
    session.once('connect', () => {
      if (!session.destroyed) session.setLocalWindowSize(connectionWindowSize)
    })
    session.setTimeout(idleTimeoutMs, () => session.close())
    if (this.#listener.draining) session.close()
  }

  readonly #onStream = (
    stream: ServerHttp2Stream,
    _headers: IncomingHttpHeaders,
    _flags: number,
    rawHeaders: string[],
  ): void => {
    // A stream error (reset by the client, protocol error) ends that stream only; its close tells the router.
    stream.on('error', ignoreStreamError)
    const listener = this.#listener
    const socket = stream.session?.socket as Socket
    const req = new Http2Request(stream, rawHeaders, socket)
    const res = new Http2Response(stream)
    startRequest(new RequestContext(req, res, stream, listener, listener.proxyModel))
  }
}

function ignoreStreamError(): void {}
