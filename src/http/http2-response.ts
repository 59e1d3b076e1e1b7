// An HTTP/2 stream's response side, seen through the DownstreamResponse shape the router writes to.

import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2'
import { constants } from 'node:http2'
import type { Socket } from 'node:net'
import { isHttp2Forbidden } from '../protocol/hop-by-hop.ts'
import type { DownstreamResponse } from './downstream.ts'

/**
 * Headers given to `writeHead` go out at the end of the current tick, or with the first body chunk,
 * whichever is first; a response that ends in that tick without body or trailers (a local reply,
 * a trailers-only gRPC answer) is one HEADERS frame with END_STREAM, as gRPC requires. Any other
 * response waits for trailers, which end the stream (an empty set ends it with an empty DATA frame).
 */
export class Http2Response implements DownstreamResponse {
  readonly #stream: ServerHttp2Stream
  /** The session's connection: a stream that closes while it is still open was reset, not dropped with it. */
  readonly #connection: Socket
  readonly #session: ServerHttp2Session
  /** The proxy reset the stream itself. */
  #resetLocally = false
  #pending: string[] | undefined
  #trailers: Record<string, string | string[]> | undefined
  headersSent = false
  writableEnded = false
  /** Heads and chunks handed to the stream: activity, for the session's stream idle sweep. */
  writes = 0
  statusCode = 200

  /** `connection` is the session's socket itself (not node:http2's proxy of it). */
  constructor(stream: ServerHttp2Stream, connection: Socket) {
    this.#stream = stream
    this.#connection = connection
    this.#session = stream.session as ServerHttp2Session
    stream.on('wantTrailers', this.#onWantTrailers)
  }

  get destroyed(): boolean {
    return this.#stream.destroyed
  }

  /**
   * True once the whole response went out; false when the stream was reset first (node:http2 then ends
   * the writable side itself, and marks the stream `aborted`).
   */
  get writableFinished(): boolean {
    const stream = this.#stream
    return stream.writableFinished && !stream.aborted
  }

  /**
   * The client's RST_STREAM closed the stream before the response ended, its connection still open: Envoy's
   * StreamResetReason::RemoteReset (DR), rather than a connection that went away (DC).
   */
  get resetByClient(): boolean {
    const stream = this.#stream
    // A dropped connection closes its streams after destroying the session (nghttp2 read EOF) or the socket.
    return stream.aborted && !this.#resetLocally && !this.#connection.destroyed && !this.#session.destroyed
  }

  writeHead(status: number, headers: string[]): this {
    this.statusCode = status
    this.headersSent = true
    this.writes++
    const out: string[] = [':status', String(status)]
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i].toLowerCase()
      if (isHttp2Forbidden(name)) continue
      out.push(name, headers[i + 1])
    }
    this.#pending = out
    queueMicrotask(this.#flush)
    return this
  }

  writeContinue(): void {
    this.#interim({ ':status': 100 })
  }

  writeProcessing(): void {
    this.#interim({ ':status': 102 })
  }

  writeEarlyHints(hints: Record<string, string | string[]>): void {
    this.#interim({ ...hints, ':status': 103 })
  }

  /** An interim (1xx) HEADERS frame, before the response's own. */
  #interim(headers: Record<string, string | string[] | number>): void {
    const stream = this.#stream
    if (this.headersSent || stream.destroyed || stream.headersSent) return
    try {
      stream.additionalHeaders(headers)
    } catch {
      // A field HTTP/2 cannot carry: the interim response is dropped, the final one still goes out.
    }
  }

  write(chunk: Buffer): boolean {
    this.writes++
    if (this.#pending !== undefined) this.#respond(false)
    if (this.#stream.destroyed) return true
    return this.#stream.write(chunk)
  }

  end(body?: string | Buffer): this {
    if (this.writableEnded) return this
    this.writableEnded = true
    this.writes++
    const empty = body === undefined || body.length === 0
    if (this.#pending !== undefined) {
      if (empty && this.#trailers === undefined) {
        this.#respond(true)
        return this
      }
      this.#respond(false)
    }
    const stream = this.#stream
    if (stream.destroyed || !stream.headersSent) return this
    if (empty) stream.end()
    else stream.end(body)
    return this
  }

  addTrailers(trailers: Record<string, string | string[]>): void {
    this.#trailers = trailers
  }

  /** Resets the stream (INTERNAL_ERROR), as Envoy resets a downstream stream it cannot finish. */
  destroy(): this {
    const stream = this.#stream
    this.#resetLocally = true
    if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR)
    return this
  }

  on(event: 'close' | 'drain', listener: () => void): this {
    this.#stream.on(event, listener)
    return this
  }

  once(event: 'close' | 'drain', listener: () => void): this {
    this.#stream.once(event, listener)
    return this
  }

  off(event: 'close' | 'drain', listener: () => void): this {
    this.#stream.off(event, listener)
    return this
  }

  readonly #flush = (): void => {
    if (this.#pending !== undefined) this.#respond(false)
  }

  #respond(endStream: boolean): void {
    const headers = this.#pending as string[]
    this.#pending = undefined
    const stream = this.#stream
    if (stream.destroyed || stream.headersSent) return
    try {
      // node:http2 adds `date` unless the upstream's is among the headers.
      stream.respond(headers, endStream ? { endStream: true } : { waitForTrailers: true })
    } catch {
      // A field HTTP/2 cannot carry (an invalid value from the upstream): the stream is reset, not the proxy.
      this.#resetLocally = true
      stream.close(constants.NGHTTP2_INTERNAL_ERROR)
    }
  }

  readonly #onWantTrailers = (): void => {
    const stream = this.#stream
    if (stream.destroyed) return
    try {
      stream.sendTrailers(this.#trailers ?? {})
    } catch {
      this.#resetLocally = true
      stream.close(constants.NGHTTP2_INTERNAL_ERROR)
    }
  }
}
