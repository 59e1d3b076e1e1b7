// The open streams of one downstream HTTP/2 session: Envoy's premature-reset guard, and their stream idle timeout swept by one timer.

import { constants, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { HttpListener } from './http-listener.ts'
import type { Http2Response } from './http2-response.ts'
import type { RequestContext } from './request-context.ts'
import { expireIdleStream } from './stream-idle-timeout.ts'

/** Envoy's overload.premature_reset_min_stream_lifetime_seconds. */
const prematureLifetimeMs = 1_000
/** The sweep runs this many times per stream idle timeout: a stream expires 1 to 1 1/4 timeouts after its last activity. */
const sweepsPerTimeout = 4

/** One stream of the session, in its list of open streams; `this` of the stream's shared 'close' listener finds it. */
export class OpenStream {
  readonly streams: SessionStreams
  readonly stream: ServerHttp2Stream
  readonly ctx: RequestContext
  readonly res: Http2Response
  /** The response's write count at the last sweep, and the bytes node still queued then. */
  seenWrites = 0
  seenQueued = 0
  /** Sweeps in a row that saw no activity; the first sweep after the stream opened does not count (less than one interval). */
  idleSweeps = -1
  /** Links of the session's list of streams under the sweep; `swept` while in it. */
  prev: OpenStream | undefined = undefined
  next: OpenStream | undefined = undefined
  swept = false

  constructor(streams: SessionStreams, stream: ServerHttp2Stream, ctx: RequestContext, res: Http2Response) {
    this.streams = streams
    this.stream = stream
    this.ctx = ctx
    this.res = res
  }
}

/**
 * One per session, so that a stream costs no timer and no clock read of its own. Envoy's premature-reset
 * guard (ConnectionManagerImpl::maybeDrainDueToPrematureResets, the CVE-2023-44487 mitigation): a stream
 * closed without response headers within 1 s of its start is premature; once `total` streams closed, the
 * connection is closed when at least half were premature, and before that as soon as half of `total` were.
 * Envoy's stream_idle_timeout (ActiveStream::onIdleTimeout): one interval timer per session walks the
 * streams whose request ended with its HEADERS (the only activity left on them is the proxy's writes, which
 * Http2Response counts, and node draining what it queued); a stream whose request has a body keeps node's
 * own stream timeout, which sees its reads.
 */
export class SessionStreams {
  readonly #session: ServerHttp2Session
  readonly #listener: HttpListener
  /** Envoy's premature_reset_total_stream_count (`limits.http2.prematureResetStreams`). */
  readonly #total: number
  #closed = 0
  #premature = 0
  #tripped = false
  #head: OpenStream | undefined
  #sweep: NodeJS.Timeout | undefined

  constructor(session: ServerHttp2Session, listener: HttpListener) {
    this.#session = session
    this.#listener = listener
    this.#total = listener.limits.http2.prematureResetStreams
    const idleMs = listener.limits.streamIdleTimeoutMs
    if (idleMs > 0) {
      this.#sweep = setInterval(SessionStreams.#sweepStreams, Math.max(1, idleMs / sweepsPerTimeout), this)
      this.#sweep.unref()
    }
  }

  /** Whether the stream idle timeout is on. */
  get timed(): boolean {
    return this.#sweep !== undefined
  }

  /** Puts a stream whose request is complete under the sweep. */
  sweep(entry: OpenStream): void {
    const head = this.#head
    entry.next = head
    if (head !== undefined) head.prev = entry
    this.#head = entry
    entry.swept = true
  }

  /** A stream closed: off the sweep, and counted toward premature resets (`entry` undefined: before it started). */
  closed(entry: OpenStream | undefined): void {
    if (entry?.swept) this.#unlink(entry)
    if (this.#tripped) return
    this.#closed++
    if (
      entry === undefined ||
      (!entry.stream.headersSent && performance.now() - entry.ctx.startTime <= prematureLifetimeMs)
    )
      this.#premature++
    const total = this.#total
    const closed = this.#closed
    const tooMany = closed >= total ? this.#premature * 2 >= closed : this.#premature * 2 >= total
    if (!tooMany) return
    this.#tripped = true
    this.#listener.countLimit('downstream_rq_too_many_premature_resets')
    // Envoy aborts the connection, with a GOAWAY since send_goaway_for_premature_rst_streams: the frame is
    // flushed first, and nghttp2 ignores the streams that follow it meanwhile.
    const session = this.#session
    session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM)
    setImmediate(destroySession, session)
  }

  /** The session closed: its sweep stops. */
  dispose(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep)
    this.#sweep = undefined
    this.#head = undefined
  }

  #unlink(entry: OpenStream): void {
    entry.swept = false
    const { prev, next } = entry
    if (prev === undefined) this.#head = next
    else prev.next = next
    if (next !== undefined) next.prev = prev
    entry.prev = undefined
    entry.next = undefined
  }

  static #sweepStreams(self: SessionStreams): void {
    let entry = self.#head
    while (entry !== undefined) {
      const next = entry.next
      const writes = entry.res.writes
      const queued = entry.stream.writableLength
      // Active: the proxy wrote since the last sweep, or node sent some of what it had queued.
      if (writes !== entry.seenWrites || (queued !== entry.seenQueued && queued > 0)) {
        entry.seenWrites = writes
        entry.seenQueued = queued
        entry.idleSweeps = 0
      } else if (++entry.idleSweeps >= sweepsPerTimeout) {
        self.#unlink(entry)
        expireStream(entry.stream, entry.ctx)
      }
      entry = next
    }
  }
}

/** A stream with no activity for the stream idle timeout (from the sweep, or node's stream 'timeout'). */
export function expireStream(stream: ServerHttp2Stream, ctx: RequestContext): void {
  if (stream.destroyed) return
  expireIdleStream(ctx)
  // A reply sent before the request ended: Envoy's doEndStream resets the stream (NO_ERROR, RFC 9113
  // §8.1) rather than wait for the rest of a request that stopped coming.
  if (!stream.destroyed && ctx.res.writableEnded && !ctx.req.complete)
    stream.close(constants.NGHTTP2_NO_ERROR)
}

function destroySession(session: ServerHttp2Session): void {
  session.destroy()
}
