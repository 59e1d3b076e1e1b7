// The downstream HTTP/2 server of one listener: h2c with prior knowledge, or h2 after TLS ALPN; every stream enters the filter chain.

import {
  constants,
  createServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2'
import type { Socket } from 'node:net'
import type { Limits } from '../protocol/limits.ts'
import { log } from '../telemetry/log.ts'
import type { HttpListener } from './http-listener.ts'
import { Http2Request } from './http2-request.ts'
import { Http2Response } from './http2-response.ts'
import { expireStream, OpenStream, SessionStreams } from './http2-session-streams.ts'
import { RequestContext } from './request-context.ts'
import { RequestHeadersDeadline } from './request-headers-deadline.ts'
import { startRequest } from './request-start.ts'

/**
 * SETTINGS the proxy advertises under the bootstrap's `limits`; Envoy's defaults are unbounded, these
 * keep one client from hoarding memory.
 */
export function http2Settings(limits: Limits) {
  return {
    maxConcurrentStreams: limits.http2.maxConcurrentStreams,
    /** Envoy's limit on request headers, as for HTTP/1.1 (max_request_headers_kb). */
    maxHeaderListSize: limits.maxRequestHeadersBytes,
    /** Per-stream receive window: enough for a fast upload, bounded per stream. */
    initialWindowSize: 1024 * 1024,
    /** RFC 8441: WebSocket over HTTP/2 (extended CONNECT with `:protocol`). */
    enableConnectProtocol: true,
  } as const
}

/** The stream's entry in its session's streams: node:http2 clears `stream.session` before the stream's 'close'. */
const kEntry = Symbol('outrigger.entry')

type TrackedStream = ServerHttp2Stream & { [kEntry]?: OpenStream }
/**
 * The connection itself: `session.socket` is node:http2's proxy of it, which throws once the session lets
 * go of the socket (ERR_HTTP2_SOCKET_UNBOUND), as it has by the time a dropped connection's streams close.
 */
const kConnection = Symbol('outrigger.connection')
/** The session's open streams and their sweep, read by the listener's shared session listeners below. */
const kStreams = Symbol('outrigger.sessionStreams')
type CountedSession = ServerHttp2Session & { [kConnection]?: Socket; [kStreams]?: SessionStreams }

/** The connection-level receive window (all streams together). */
const connectionWindowSize = 16 * 1024 * 1024

function setConnectionWindow(this: ServerHttp2Session): void {
  if (!this.destroyed) this.setLocalWindowSize(connectionWindowSize)
}

export class Http2Downstream {
  readonly #listener: HttpListener
  readonly #server: Http2Server
  readonly #sessions = new Set<ServerHttp2Session>()
  /** The socket being handed to node:http2, which makes its session in the same call. */
  #accepting: Socket | undefined
  /**
   * The session listeners: one function each per listener, shared by every session, which node calls
   * with the session as `this`; closures (and `once`'s wrappers) per session stayed on idle connections.
   */
  readonly #sessionListeners: {
    readonly close: (this: CountedSession) => void
    readonly stream: (
      this: CountedSession,
      stream: TrackedStream,
      headers: IncomingHttpHeaders,
      flags: number,
      rawHeaders: string[],
    ) => void
    readonly error: (err: NodeJS.ErrnoException) => void
    readonly timeout: (this: CountedSession) => void
  }

  constructor(listener: HttpListener) {
    this.#listener = listener
    const downstream = this
    this.#sessionListeners = {
      close(this: CountedSession): void {
        this[kStreams]?.dispose()
        downstream.#sessions.delete(this)
      },
      stream(this: CountedSession, stream, _headers, flags, rawHeaders): void {
        const streams = this[kStreams]
        if (streams !== undefined) downstream.#onStream(this, streams, stream, flags, rawHeaders)
      },
      error: (err) => this.#onSessionError(err),
      // Envoy's connection idle_timeout, once: a session closing already waits for its streams.
      timeout(this: CountedSession): void {
        if (this.closed) return
        downstream.#listener.countLimit('downstream_cx_idle_timeout')
        this.close()
      },
    }
    const limits = listener.limits.http2
    this.#server = createServer({
      settings: http2Settings(listener.limits),
      // node:http2 refuses new streams once a session buffers more than this (MB); streams are flow-controlled.
      maxSessionMemory: limits.maxSessionMemoryMb,
      // A session sending more invalid frames, or opening more streams that were refused, is closed.
      maxSessionInvalidFrames: limits.maxInvalidFrames,
      maxSessionRejectedStreams: limits.maxRejectedStreams,
      // Header fields are counted in #onStream (pseudo-headers too, as Envoy's h2 codec); node's own cap
      // (128 by default) refuses a stream above it with ENHANCE_YOUR_CALM before that, uncounted.
      maxHeaderListPairs: listener.limits.maxRequestHeadersCount + 8,
    })
    this.#server.on('session', this.#onSession)
  }

  /** Serves a connection whose first bytes (still unread in its buffer) are the HTTP/2 preface or TLS-ALPN h2. */
  serve(socket: Socket): void {
    // The listener accepts half-open sockets (as node:http does), but an HTTP/2 connection has no use for
    // one: node:http2 never looks at a client's FIN, so a client that went away would keep its session
    // and every stream's upstream request until the idle timeout. Its FIN closes the connection, as a
    // RemoteClose in Envoy resets every stream (DC).
    socket.allowHalfOpen = false
    // node:http2 reads what is buffered in the socket when the session starts: do not resume it here.
    this.#accepting = socket
    this.#server.emit('connection', socket)
    this.#accepting = undefined
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

  readonly #onSession = (session: CountedSession): void => {
    this.#sessions.add(session)
    session[kConnection] = this.#accepting ?? (session.socket as Socket)
    session[kStreams] = new SessionStreams(session, this.#listener)
    const listeners = this.#sessionListeners
    session.on('close', listeners.close)
    // node:http2's own 'stream' listener (sessionOnStream) only re-emits on the server: the session's
    // streams come here directly, with their session (a stream destroyed already has none of its own).
    session.removeAllListeners('stream')
    session.on('stream', listeners.stream)
    session.on('error', listeners.error)
    session.once('connect', setConnectionWindow)
    // Envoy's connection idle_timeout; node:http2 counts any frame as activity.
    const idleMs = this.#listener.limits.idleTimeoutMs
    if (idleMs > 0) {
      session.setTimeout(idleMs)
      session.on('timeout', listeners.timeout)
    }
    // Draining (Envoy's drain-close, ConnectionManagerImpl::startDrainSequence): a session that starts now
    // is served the streams its client opened first, then gets GOAWAY; closing it before its first stream
    // would refuse every request it carries, and its client would only reconnect.
    if (this.#listener.draining) session.once('stream', () => session.close())
  }

  /** A session node:http2 or nghttp2 closed for abuse is counted under Envoy's HTTP/2 codec stats. */
  #onSessionError(err: NodeJS.ErrnoException): void {
    const listener = this.#listener
    log.debug(`listener ${listener.model.name}: h2 session: ${err.message}`)
    if (err.code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES') listener.countLimit('http2.rx_messaging_error')
    else if (err.code === 'ERR_HTTP2_ERROR' && err.message.includes('Flooding'))
      listener.countLimit('http2.outbound_control_flood')
  }

  #onStream(
    session: CountedSession,
    streams: SessionStreams,
    stream: TrackedStream,
    flags: number,
    rawHeaders: string[],
  ): void {
    // A stream error (reset by the client, protocol error) ends that stream only; its close tells the router.
    stream.on('error', ignoreStreamError)
    // node:http2 emits 'stream' a tick late: a stream the client reset in the same read is closed already.
    if (stream.destroyed || session.destroyed) {
      streams.closed(undefined)
      return
    }
    const listener = this.#listener
    const socket = session[kConnection] ?? (session.socket as Socket)
    RequestHeadersDeadline.met(socket)
    // Envoy's HTTP/2 codec resets a stream with more header fields than max_headers_count (header_overflow).
    if (rawHeaders.length > listener.limits.maxRequestHeadersCount * 2) {
      listener.countLimit('http2.header_overflow')
      stream.once('close', () => streams.closed(undefined))
      stream.close(constants.NGHTTP2_INTERNAL_ERROR)
      return
    }
    const req = new Http2Request(stream, rawHeaders, socket)
    const res = new Http2Response(stream, socket)
    const ctx = new RequestContext(req, res, stream, listener, listener.proxyModel)
    const entry = new OpenStream(streams, stream, ctx, res)
    stream[kEntry] = entry
    stream.on('close', onStreamClose)
    // Envoy's stream_idle_timeout. A request that ended with its HEADERS (GET and the like, most gRPC
    // calls do not) goes to the session's sweep; one with a body keeps node:http2's stream timeout, which
    // node refreshes on every frame read or written (and holds off while a write still drains).
    if (streams.timed) {
      if (flags & constants.NGHTTP2_FLAG_END_STREAM) streams.sweep(entry)
      else {
        stream.setTimeout(listener.limits.streamIdleTimeoutMs)
        stream.on('timeout', onStreamIdle)
      }
    }
    startRequest(ctx)
  }
}

/** A stream closed: off its session's sweep, counted toward premature resets; `this` is the stream. */
function onStreamClose(this: TrackedStream): void {
  const entry = this[kEntry]
  if (entry !== undefined) entry.streams.closed(entry)
}

/** node:http2's stream timeout on a stream whose request has a body; `this` is the stream. */
function onStreamIdle(this: TrackedStream): void {
  const entry = this[kEntry]
  if (entry !== undefined) expireStream(this, entry.ctx)
}

function ignoreStreamError(): void {}
