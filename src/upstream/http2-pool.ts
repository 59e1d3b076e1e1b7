// HTTP/2 (h2c prior knowledge) connections to one endpoint: multiplexed sessions behind undici's dispatch-handler interface.

import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type IncomingHttpHeaders,
} from 'node:http2'
import { type LookupFunction, connect as netConnect, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { isHttp2Forbidden } from '../protocol/hop-by-hop.ts'
import type { ConnectionEvents } from './cluster-stats.ts'
import {
  Http2SessionClosedError,
  Http2StreamResetError,
  ResponseHeadTooLargeError,
  UpstreamConnectTimeoutError,
} from './failure.ts'

/** What one request sends; `headers` are lowercase pairs with `host` first, as buildUpstreamHeaders makes them. */
export interface UpstreamDispatch {
  readonly method: string
  readonly path: string
  readonly headers: readonly string[]
  readonly body: Buffer | Readable | AsyncIterable<Buffer> | null
}

export interface Http2PoolOptions {
  readonly connectTimeoutMs: number
  /** Sessions at most; streams beyond every session's limit wait in nghttp2's queue. */
  readonly maxSessions: number
  /** Streams open at once on one session, below the server's own SETTINGS limit. */
  readonly maxConcurrentStreams: number
  /** Streams a session carries before it is retired (0: unlimited). */
  readonly maxStreamsPerSession: number
  /** A session with no stream for this long closes. */
  readonly idleTimeoutMs: number
  /** A session older than this takes no new stream (undefined: no limit). */
  readonly maxSessionAgeMs: number | undefined
  /**
   * SETTINGS_MAX_HEADER_LIST_SIZE: node:http2 resets a stream whose response head is larger
   * (ENHANCE_YOUR_CALM, a protocol error). It holds from the server's SETTINGS acknowledgement on; streams
   * opened before it are held to nghttp2's default (64 KiB).
   */
  readonly maxResponseHeadersBytes: number
  /** Where connections go instead of resolving the origin's host (a LOGICAL_DNS host's current address). */
  readonly lookup?: LookupFunction
  /** The source address of the sessions' connections (Envoy's upstream_bind_config). */
  readonly sourceAddress?: string
  /**
   * Opens a session's connection instead of plain TCP (a TLS endpoint); `onFailure` hears why it could
   * not be made (the handshake's error), which the session's waiting requests then fail with.
   */
  readonly connectSocket?: (onFailure: (err: Error) => void) => Socket
  /** Told of each session's connection: opened, closed, or failed to connect (the cluster's stats). */
  readonly connectionEvents?: ConnectionEvents
}

const streamWindowSize = 1024 * 1024
const connectionWindowSize = 16 * 1024 * 1024

/** One connection: its session, what waits for it to connect, and what it has carried. */
class SessionEntry {
  readonly session: ClientHttp2Session
  readonly openedAt = performance.now()
  connected = false
  /** Taking no new streams (GOAWAY, closed, too old, or its stream budget spent). */
  retired = false
  activeStreams = 0
  streamsStarted = 0
  readonly waiting: Http2Exchange[] = []
  idleTimer: NodeJS.Timeout | undefined
  /** The session's connection (node:http2 lends out only a guarded proxy of it). */
  readonly socket: Socket | undefined

  constructor(session: ClientHttp2Session, socket: Socket | undefined) {
    this.session = session
    this.socket = socket
  }
}

export class Http2Pool {
  readonly #origin: string
  readonly #options: Http2PoolOptions
  #entries: SessionEntry[] = []
  #closed = false

  constructor(origin: string, options: Http2PoolOptions) {
    this.#origin = origin
    this.#options = options
  }

  /** Sends `request` on a session with room for a stream; the handler hears of it as undici's would. */
  dispatch(request: UpstreamDispatch, handler: Dispatcher.DispatchHandler): void {
    const exchange = new Http2Exchange(request, handler)
    if (this.#closed) {
      exchange.fail(new Error('HTTP/2 pool is closed'))
      return
    }
    const entry = this.#entryWithRoom()
    if (entry.connected) this.#startOn(entry, exchange)
    else entry.waiting.push(exchange)
  }

  /** Open sessions (for /clusters). */
  get sessions(): number {
    return this.#entries.length
  }

  /** Closes every session once its streams finish. */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.all(
      this.#entries.map(
        (e) =>
          new Promise<void>((resolve) => {
            if (e.session.closed || e.session.destroyed) resolve()
            else e.session.close(() => resolve())
          }),
      ),
    )
  }

  #entryWithRoom(): SessionEntry {
    const opts = this.#options
    const now = performance.now()
    let best: SessionEntry | undefined
    for (const entry of this.#entries) {
      if (entry.retired) continue
      if (opts.maxSessionAgeMs !== undefined && now - entry.openedAt >= opts.maxSessionAgeMs) {
        this.#retire(entry)
        continue
      }
      const remote = entry.connected ? (entry.session.remoteSettings.maxConcurrentStreams ?? 100) : 100
      const limit = Math.min(remote, opts.maxConcurrentStreams)
      const load = entry.activeStreams + entry.waiting.length
      if (load < limit) return entry
      if (best === undefined || load < best.activeStreams + best.waiting.length) best = entry
    }
    if (best !== undefined && this.#liveEntries() >= opts.maxSessions) return best
    return this.#open()
  }

  #liveEntries(): number {
    let n = 0
    for (const e of this.#entries) if (!e.retired) n++
    return n
  }

  #open(): SessionEntry {
    const connectSocket = this.#options.connectSocket
    let failure: Error | undefined
    let socket: Socket | undefined
    const session = connect(this.#origin, {
      settings: {
        initialWindowSize: streamWindowSize,
        enablePush: false,
        maxHeaderListSize: this.#options.maxResponseHeadersBytes,
      },
      maxSessionMemory: 64,
      // Frames go out as written (no Nagle delay behind a delayed ACK), as on the downstream sockets.
      createConnection: (url: URL) => {
        socket =
          connectSocket?.((err) => {
            failure = err
          }) ??
          netConnect({
            host: url.hostname.replace(/^\[|\]$/g, ''),
            port: Number(url.port),
            noDelay: true,
            ...(this.#options.lookup !== undefined ? { lookup: this.#options.lookup } : {}),
            ...(this.#options.sourceAddress !== undefined
              ? { localAddress: this.#options.sourceAddress }
              : {}),
          })
        return socket
      },
    })
    const entry = new SessionEntry(session, socket)
    this.#entries.push(entry)
    const timer = setTimeout(() => {
      if (!entry.connected) session.destroy(new UpstreamConnectTimeoutError())
    }, this.#options.connectTimeoutMs)
    const events = this.#options.connectionEvents
    session.once('connect', () => {
      clearTimeout(timer)
      entry.connected = true
      events?.connectionOpened()
      if (!session.destroyed) session.setLocalWindowSize(connectionWindowSize)
      const waiting = entry.waiting.splice(0)
      for (const exchange of waiting) this.#startOn(entry, exchange)
      if (entry.activeStreams === 0) this.#armIdle(entry)
    })
    session.on('error', () => {})
    session.once('goaway', () => this.#retire(entry))
    session.once('close', () => {
      if (entry.connected) events?.connectionClosed()
      else events?.connectFailed()
      clearTimeout(timer)
      if (entry.idleTimer !== undefined) clearTimeout(entry.idleTimer)
      entry.retired = true
      this.#entries = this.#entries.filter((e) => e !== entry)
      // Never connected: every request that waited for this session failed to connect.
      const waiting = entry.waiting.splice(0)
      const err = failure ?? connectError(session)
      for (const exchange of waiting) exchange.fail(err)
    })
    return entry
  }

  #startOn(entry: SessionEntry, exchange: Http2Exchange): void {
    if (entry.idleTimer !== undefined) {
      clearTimeout(entry.idleTimer)
      entry.idleTimer = undefined
    }
    entry.activeStreams++
    entry.streamsStarted++
    const max = this.#options.maxStreamsPerSession
    if (max > 0 && entry.streamsStarted >= max) this.#retire(entry)
    // Until the server acknowledges our SETTINGS, nghttp2 holds a new stream to its own header-list cap.
    const session = entry.session
    const headLimit = session.pendingSettingsAck ? this.#options.maxResponseHeadersBytes : 0
    exchange.start(session, headLimit, () => {
      entry.activeStreams--
      if (entry.activeStreams > 0) return
      if (entry.retired) closeIdle(entry)
      else this.#armIdle(entry)
    })
  }

  #armIdle(entry: SessionEntry): void {
    entry.idleTimer = setTimeout(() => {
      entry.idleTimer = undefined
      if (entry.activeStreams === 0) this.#retire(entry)
    }, this.#options.idleTimeoutMs)
    entry.idleTimer.unref()
  }

  /** No new streams on this session; it closes once its streams finish. */
  #retire(entry: SessionEntry): void {
    if (entry.retired) return
    entry.retired = true
    if (entry.activeStreams === 0 && entry.waiting.length === 0) closeIdle(entry)
  }
}

/**
 * Closes a retired session that has no stream left, and its connection once what is written has gone
 * out, as Envoy closes an idle upstream connection (FlushWrite). node:http2 alone would end the socket
 * and wait for the peer to close its side, which an upstream may never do (one that sent GOAWAY with a
 * stream still open on its side kept the connection for good); and it destroys a session that a GOAWAY
 * closed only if nothing is left to write when the last stream goes.
 */
function closeIdle(entry: SessionEntry): void {
  entry.session.destroy()
  entry.socket?.destroySoon()
}

function connectError(session: ClientHttp2Session): Error {
  const err = new Error('HTTP/2 session closed before it connected') as Error & { code?: string }
  err.code = session.destroyed ? 'ECONNREFUSED' : 'ECONNRESET'
  return err
}

/** One request on one stream; it is the DispatchController its handler pauses, resumes and aborts. */
class Http2Exchange implements Dispatcher.DispatchController {
  readonly #request: UpstreamDispatch
  readonly #handler: Dispatcher.DispatchHandler
  #stream: ClientHttp2Stream | undefined
  #session: ClientHttp2Session | undefined
  #onDone: (() => void) | undefined
  #done = false
  #responded = false
  #trailers: IncomingHttpHeaders | undefined
  #reason: Error | null = null
  /** The response head size this exchange checks itself (opened before SETTINGS were acknowledged); 0: node does. */
  #headLimit = 0
  paused = false
  /** node:http2's flat list of the response's header fields (name, value, …), pseudo-headers included. */
  rawHeaders: string[] | null = null

  constructor(request: UpstreamDispatch, handler: Dispatcher.DispatchHandler) {
    this.#request = request
    this.#handler = handler
  }

  get aborted(): boolean {
    return this.#reason !== null
  }

  get reason(): Error | null {
    return this.#reason
  }

  start(session: ClientHttp2Session, headLimit: number, onDone: () => void): void {
    this.#onDone = onDone
    this.#headLimit = headLimit
    this.#session = session
    const request = this.#request
    const body = request.body
    let stream: ClientHttp2Stream
    try {
      stream = session.request(requestHeaders(request), { endStream: body === null })
    } catch (err) {
      this.fail(err as Error)
      return
    }
    this.#stream = stream
    stream.on('response', this.#onResponse)
    stream.on('headers', this.#onInterimResponse)
    stream.on('data', this.#onData)
    stream.on('trailers', this.#onTrailers)
    stream.on('end', this.#onEnd)
    stream.on('error', this.#onError)
    stream.on('close', this.#onClose)
    this.#handler.onRequestStart?.(this, {})
    if (this.#done) return
    if (body !== null) sendBody(body, stream)
  }

  /** Ends the exchange with `err` before or instead of a response. */
  fail(err: Error): void {
    if (this.#done) return
    this.#finish()
    this.#handler.onResponseError?.(this, err)
  }

  pause(): void {
    this.paused = true
    this.#stream?.pause()
  }

  resume(): void {
    this.paused = false
    this.#stream?.resume()
  }

  abort(reason: Error): void {
    if (this.#done) return
    this.#reason = reason
    const stream = this.#stream
    if (stream !== undefined && !stream.destroyed) stream.close(constants.NGHTTP2_CANCEL)
    this.fail(reason)
  }

  /** The handler gets node:http2's header object as undici's parsed headers (pseudo-headers included). */
  readonly #onResponse = (headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void => {
    if (this.#done) return
    this.rawHeaders = rawHeaders
    if (this.#headLimit > 0) {
      const bytes = headListSize(headers)
      if (bytes > this.#headLimit) {
        this.abort(new ResponseHeadTooLargeError(bytes, this.#headLimit))
        return
      }
    }
    this.#responded = true
    this.#handler.onResponseStart?.(this, Number(headers[':status']), headers, '')
    // Headers with END_STREAM (a trailers-only gRPC answer): the response is complete now.
    if (!this.#done && flags & constants.NGHTTP2_FLAG_END_STREAM) this.#complete()
  }

  /** node:http2 emits a 1xx as 'headers' before 'response'; undici hands a 1xx to onResponseStart too. */
  readonly #onInterimResponse = (headers: IncomingHttpHeaders): void => {
    if (!this.#done && !this.#responded)
      this.#handler.onResponseStart?.(this, Number(headers[':status']), headers, '')
  }

  readonly #onData = (chunk: Buffer): void => {
    if (!this.#done) this.#handler.onResponseData?.(this, chunk)
  }

  readonly #onTrailers = (headers: IncomingHttpHeaders): void => {
    this.#trailers = headers
  }

  /**
   * node:http2 also ends a stream's readable side when the stream closes without END_STREAM (its
   * session died, or a reset): then the response is cut short, not complete.
   */
  readonly #onEnd = (): void => {
    if (this.#done || !this.#responded) return
    const cut = closedError(this.#stream as ClientHttp2Stream, this.#session as ClientHttp2Session)
    if (cut !== undefined) this.fail(cut)
    else this.#complete()
  }

  readonly #onError = (err: Error): void => {
    this.fail(closedError(this.#stream as ClientHttp2Stream, this.#session as ClientHttp2Session) ?? err)
  }

  readonly #onClose = (): void => {
    if (this.#done) {
      this.#release()
      return
    }
    const stream = this.#stream as ClientHttp2Stream
    // Closed without an end: a reset (RST_STREAM) or the session went away under it.
    const cut = closedError(stream, this.#session as ClientHttp2Session)
    if (cut !== undefined) {
      this.fail(cut)
    } else if (this.#responded) {
      this.#complete()
    } else {
      this.fail(new Http2StreamResetError(constants.NGHTTP2_NO_ERROR))
    }
    this.#release()
  }

  #complete(): void {
    this.#finish()
    const trailers = this.#trailers ?? {}
    this.#handler.onResponseEnd?.(this, trailers as Record<string, string | string[]>)
  }

  #finish(): void {
    this.#done = true
    // A stream that never opened (session failed) releases its slot here; an open one when it closes.
    if (this.#stream === undefined || this.#stream.closed) this.#release()
  }

  #release(): void {
    const onDone = this.#onDone
    this.#onDone = undefined
    onDone?.()
  }
}

/** A header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it: name, value and 32 octets per field (RFC 9113 §6.5.2). */
function headListSize(headers: IncomingHttpHeaders): number {
  let bytes = 0
  for (const name in headers) {
    const value = headers[name]
    if (Array.isArray(value)) for (const v of value) bytes += name.length + v.length + 32
    else if (value !== undefined) bytes += name.length + String(value).length + 32
  }
  return bytes
}

/**
 * Why a stream closed with an error code, or undefined when it closed cleanly: its session went away
 * (node:http2 cancels the streams of a destroyed session; Envoy's codec calls it connection termination),
 * or the upstream reset it (RST_STREAM).
 */
function closedError(stream: ClientHttp2Stream, session: ClientHttp2Session): Error | undefined {
  const code = stream.rstCode
  if (code === undefined || code === constants.NGHTTP2_NO_ERROR) return undefined
  if (session.destroyed) return new Http2SessionClosedError()
  return new Http2StreamResetError(code)
}

/** `:method`, `:scheme`, `:authority` (from host), `:path`, then the regular fields, lowercase. */
function requestHeaders(request: UpstreamDispatch): string[] {
  const src = request.headers
  const out: string[] = [':method', request.method, ':scheme', 'http', ':path', request.path]
  for (let i = 0; i < src.length; i += 2) {
    const name = src[i].toLowerCase()
    const value = src[i + 1]
    if (name === 'host') {
      out.push(':authority', value)
      continue
    }
    if (isHttp2Forbidden(name)) continue
    if (name === 'te' && value.toLowerCase() !== 'trailers') continue
    out.push(name, value)
  }
  return out
}

/** Writes the request body with back-pressure, ending the stream after it; the source is never destroyed. */
function sendBody(body: Buffer | Readable | AsyncIterable<Buffer>, stream: ClientHttp2Stream): void {
  if (Buffer.isBuffer(body)) {
    stream.end(body)
    return
  }
  if (body instanceof Readable) {
    const onData = (chunk: Buffer): void => {
      if (!stream.write(chunk)) body.pause()
    }
    const onDrain = (): void => {
      body.resume()
    }
    const onEnd = (): void => {
      cleanup()
      stream.end()
    }
    const cleanup = (): void => {
      body.off('data', onData)
      body.off('end', onEnd)
      stream.off('drain', onDrain)
      stream.off('close', cleanup)
    }
    body.on('data', onData)
    body.once('end', onEnd)
    stream.on('drain', onDrain)
    stream.once('close', cleanup)
    body.resume()
    return
  }
  void pumpIterable(body, stream)
}

async function pumpIterable(body: AsyncIterable<Buffer>, stream: ClientHttp2Stream): Promise<void> {
  try {
    for await (const chunk of body) {
      if (stream.destroyed) return
      if (!stream.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off('drain', done)
            stream.off('close', done)
            resolve()
          }
          stream.once('drain', done)
          stream.once('close', done)
        })
      }
    }
    if (!stream.destroyed) stream.end()
  } catch {
    // The downstream went away mid-body: reset the upstream stream too.
    if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL)
  }
}
