// One try of a proxied request: the undici dispatch handler that sends it to one endpoint.

import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { buildDownstreamHeaders, type ResponseFields } from '../http/downstream-headers.ts'
import type { RequestContext } from '../http/request-context.ts'
import { runResponseHeaders } from '../http/response-headers-phase.ts'
import {
  classifyUpstreamError,
  DownstreamClosedError,
  ResponseHeadersOverflowError,
  UpstreamTimeoutError,
} from '../upstream/failure.ts'
import type { UpstreamEndpoint } from '../upstream/upstream-endpoint.ts'
import { GrpcFrameCounter } from './grpc-frame-counter.ts'

/** The reason passed to undici's abort when a try's `perTryTimeout` fires (a retriable timeout). */
export class PerTryTimeoutError extends UpstreamTimeoutError {}

/** The reason passed to undici's abort when a try's response is dropped for a retry. */
export class RetryAbandonedError extends Error {
  constructor() {
    super('response dropped for a retry')
    this.name = 'RetryAbandonedError'
  }
}

/** What a try reports to the request that owns it. */
export interface AttemptOwner {
  /** A gRPC call: the response's grpc-status and messages are recorded on the request. */
  readonly grpc: boolean
  /** An interim (1xx) response arrived ahead of the final one. */
  interimResponse(attempt: UpstreamAttempt, status: number, fields: ResponseFields): void
  /** Response headers arrived: true to send them downstream, false to drop this try for a retry. */
  acceptResponse(attempt: UpstreamAttempt, status: number, fields: ResponseFields): boolean
  /** The accepted response ended; `lastChunk` is its final body chunk when that was held back to end with. */
  attemptEnded(attempt: UpstreamAttempt, lastChunk: Buffer | undefined): void
  /** The try failed; `sent` is false when it never got a connection. */
  attemptFailed(attempt: UpstreamAttempt, err: Error, sent: boolean): void
}

export interface AttemptSpec {
  readonly method: string
  readonly path: string
  readonly headers: string[]
  readonly body: Buffer | Readable | AsyncIterable<Buffer> | null
  readonly perTryTimeoutMs: number
}

/** A dropped response's body up to this length is read to its end rather than cut with its connection. */
const drainableBodyBytes = 16 * 1024
/** How long such a body may take to arrive before its connection is closed after all. */
const drainTimeoutMs = 1_000

/** The response's content-length, or -1 without a valid one (chunked, or delimited by the close). */
function contentLength(fields: ResponseFields): number {
  const declared = fields['content-length']
  if (typeof declared !== 'string') return -1
  const value = Number(declared)
  return Number.isInteger(value) && value >= 0 ? value : -1
}

function hasFields(trailers: Record<string, string | string[]> | undefined): boolean {
  if (trailers === undefined) return false
  for (const _ in trailers) return true
  return false
}

export class UpstreamAttempt implements Dispatcher.DispatchHandler {
  readonly #owner: AttemptOwner
  readonly #ctx: RequestContext
  readonly endpoint: UpstreamEndpoint
  #dispatchedAt = 0
  #controller: Dispatcher.DispatchController | undefined
  #timer: NodeJS.Timeout | undefined
  #done = false
  #accepted = false
  /** The whole request went out with its headers (no body, or one in hand). */
  #requestSent = false
  /** Closes the connection of a dropped response whose body is slow to arrive. */
  #drainTimer: NodeJS.Timeout | undefined
  #onDownstreamDrain: (() => void) | undefined
  /** Arms the per-try timer once the request body has been read (set only while waiting for it). */
  #onRequestComplete: (() => void) | undefined
  /** Body bytes still to come of an HTTP/1.1 downstream's response of declared length; -1 otherwise. */
  #bodyLeft = -1
  /** The chunk that completed such a body, held so that the response ends with it (see onResponseData). */
  #lastChunk: Buffer | undefined
  /** Counts the response's gRPC messages (istio_response_messages_total); made for gRPC calls only. */
  #responseFrames: GrpcFrameCounter | undefined

  constructor(owner: AttemptOwner, ctx: RequestContext, endpoint: UpstreamEndpoint) {
    this.#owner = owner
    this.#ctx = ctx
    this.endpoint = endpoint
  }

  /** True once the response of this try is going downstream. */
  get accepted(): boolean {
    return this.#accepted
  }

  start(spec: AttemptSpec): void {
    this.endpoint.acquire()
    this.#ctx.upstream = this.endpoint
    // Istio's principals: a try over ISTIO_MUTUAL or MUTUAL presents this workload's certificate.
    const tls = this.endpoint.tls
    this.#ctx.upstreamMtls = tls !== undefined && tls.model.mode !== 'SIMPLE'
    this.#dispatchedAt = performance.now()
    this.#requestSent = spec.body === null || Buffer.isBuffer(spec.body)
    if (spec.perTryTimeoutMs > 0) this.#armPerTryTimeout(spec)
    try {
      // The spec is the dispatch options (undici ignores perTryTimeoutMs): one object less per try.
      this.endpoint.dispatch(spec, this, this.#ctx.http2)
    } catch (err) {
      this.onResponseError(undefined, err as Error)
    }
  }

  /**
   * Envoy starts a try's timer once the whole request is sent: now for a body in hand, else when the
   * downstream body ends (a slow upload is not cut by perTryTimeout, only by the route timeout).
   */
  #armPerTryTimeout(spec: AttemptSpec): void {
    const ctx = this.#ctx
    const ms = spec.perTryTimeoutMs
    if (spec.body === null || Buffer.isBuffer(spec.body) || ctx.req.complete) {
      this.#timer = setTimeout(UpstreamAttempt.#perTryTimedOut, ms, this)
      return
    }
    this.#onRequestComplete = (): void => {
      this.#onRequestComplete = undefined
      if (!this.#done) this.#timer = setTimeout(UpstreamAttempt.#perTryTimedOut, ms, this)
    }
    ctx.body.once('end', this.#onRequestComplete)
  }

  /** Stops this try (route timeout, client gone); its failure is reported to the owner unless it was done. */
  abort(reason: Error): void {
    if (this.#done) return
    if (this.#controller !== undefined) this.#controller.abort(reason)
    else this.onResponseError(undefined, reason)
  }

  /** Static, with the attempt as argument: no closure per request. */
  static #perTryTimedOut(self: UpstreamAttempt): void {
    self.#timer = undefined
    self.endpoint.clusterStats?.perTryTimedOut()
    self.abort(new PerTryTimeoutError())
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    // Given up already (timeout, client gone) while waiting for a connection: don't send it.
    if (this.#done) controller.abort(new DownstreamClosedError())
  }

  /**
   * `fields` are undici's parsed headers (names lowercase, values latin1), which it builds for every
   * response anyway: read instead of decoding `controller.rawHeaders` a second time.
   */
  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    fields: ResponseFields,
  ): void {
    if (this.#done) return
    // undici and the HTTP/2 pool hand a 1xx here too: it is not the response (never answer with it).
    if (statusCode < 200) {
      if (!this.#accepted) this.#owner.interimResponse(this, statusCode, fields)
      return
    }
    const ctx = this.#ctx
    const fieldCount = responseFieldCount(controller, fields)
    const limit = ctx.listener.limits.maxResponseHeadersCount
    if (fieldCount > limit) {
      controller.abort(new ResponseHeadersOverflowError(fieldCount, limit))
      return
    }
    this.endpoint.reportStatus(statusCode)
    if (!this.#owner.acceptResponse(this, statusCode, fields)) {
      this.endpoint.clusterStats?.chargeRetriedCode(statusCode)
      this.#finish()
      this.#dropResponse(controller, fields)
      return
    }
    this.#accepted = true
    this.endpoint.clusterStats?.chargeCode(statusCode)
    ctx.upstreamServiceTime = Math.round(performance.now() - this.#dispatchedAt)
    ctx.responseCodeDetails = 'via_upstream'
    const headers = buildDownstreamHeaders(ctx, fields)
    if (ctx.listener.closesConnections) headers.push('connection', 'close')
    runResponseHeaders(ctx, statusCode, headers)
    ctx.res.writeHead(statusCode, headers)
    if (!ctx.http2) this.#bodyLeft = contentLength(fields)
    if (this.#owner.grpc) {
      // A trailers-only answer carries grpc-status in its headers; others in the trailers (onResponseEnd).
      const status = fields['grpc-status']
      if (typeof status === 'string') ctx.grpcStatus = status
      this.#responseFrames = new GrpcFrameCounter()
    }
  }

  /**
   * A response given up for a retry. Envoy resets the upstream stream, which closes an HTTP/1.1
   * connection; a short body of known length after a request sent whole is read to its end instead
   * (and dropped), so the connection goes back to the pool and the next request does not pay for a
   * new one. Over HTTP/2 the reset costs only the stream.
   */
  #dropResponse(controller: Dispatcher.DispatchController, fields: ResponseFields): void {
    const length = this.#requestSent ? contentLength(fields) : -1
    if (length < 0 || length > drainableBodyBytes || this.endpoint.usesHttp2(this.#ctx.http2)) {
      controller.abort(new RetryAbandonedError())
      return
    }
    this.#drainTimer = setTimeout(UpstreamAttempt.#drainTimedOut, drainTimeoutMs, controller)
  }

  static #drainTimedOut(controller: Dispatcher.DispatchController): void {
    controller.abort(new RetryAbandonedError())
  }

  /**
   * Streams each chunk down as it comes, except the one that completes a body of declared length to an
   * HTTP/1.1 client: the end follows it at once, and node:http sends a chunk given to `end()` in the
   * same write as the head without corking the socket until the next tick, as `write()` does.
   */
  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#accepted) return
    const ctx = this.#ctx
    ctx.responseBodyBytes += chunk.length
    if (this.#responseFrames !== undefined) ctx.responseMessages += this.#responseFrames.count(chunk)
    if (this.#bodyLeft > 0) {
      this.#bodyLeft -= chunk.length
      if (this.#bodyLeft === 0) {
        this.#lastChunk = chunk
        return
      }
    }
    if (!ctx.res.write(chunk)) {
      controller.pause()
      // Made on the first back-pressure only.
      this.#onDownstreamDrain ??= (): void => {
        this.#controller?.resume()
      }
      this.#ctx.res.once('drain', this.#onDownstreamDrain)
    }
  }

  onResponseEnd(
    _controller: Dispatcher.DispatchController,
    trailers: Record<string, string | string[]>,
  ): void {
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer)
    if (this.#done) return
    this.#finish()
    // gRPC's status and any other trailers follow the body (HTTP/2, or a chunked HTTP/1.1 response).
    if (this.#accepted && hasFields(trailers)) {
      this.#ctx.res.addTrailers(trailers)
      const status = trailers['grpc-status']
      if (this.#owner.grpc && typeof status === 'string') this.#ctx.grpcStatus = status
    }
    this.#owner.attemptEnded(this, this.#lastChunk)
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer)
    if (this.#done) return
    const sent = this.#controller !== undefined
    this.#finish()
    if (err instanceof DownstreamClosedError || err instanceof RetryAbandonedError) return
    const kind = classifyUpstreamError(err, sent)
    // Outlier detection (and cx_connect_fail) hear of every failure, a reset mid-response included, as
    // Envoy's router reports each upstream reset; a timeout while still waiting for a connection is not
    // the endpoint's fault (Envoy: no host yet).
    if (sent || kind !== 'timeout') this.endpoint.reportFailure(kind)
    if (kind === 'protocolError') this.endpoint.clusterStats?.protocolError()
    this.#owner.attemptFailed(this, err, sent)
  }

  #finish(): void {
    if (this.#done) return
    this.#done = true
    this.endpoint.release()
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#onRequestComplete !== undefined) this.#ctx.body.off('end', this.#onRequestComplete)
  }
}

/** Header fields of a response: undici's raw list where it keeps one (HTTP/1.1), else the parsed names. */
function responseFieldCount(controller: Dispatcher.DispatchController, fields: ResponseFields): number {
  const raw = controller.rawHeaders
  if (Array.isArray(raw)) return raw.length >> 1
  let count = 0
  for (const name in fields) {
    const value = fields[name]
    count += Array.isArray(value) ? value.length : 1
  }
  return count
}
