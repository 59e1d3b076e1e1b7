// Sends one proxied request upstream and streams the response down, retrying failed tries per the route's policy.

import type { Readable } from 'node:stream'
import type { ResponseFields } from '../http/downstream-headers.ts'
import { isGrpcRequest } from '../http/grpc.ts'
import { forwardInterimResponse } from '../http/interim-response.ts'
import { LocalReplies } from '../http/local-reply.ts'
import type { RequestContext, UpstreamExchange } from '../http/request-context.ts'
import { sendLocalReply } from '../http/respond.ts'
import type { MirrorPolicy } from '../route/mirror-policy.ts'
import {
  backoffMs,
  GRPC_CONDITIONS,
  MAX_REPLAY_BODY_BYTES,
  type RetryPolicy,
  retriableFailure,
  retriableResponse,
} from '../route/retry-policy.ts'
import type { Cluster } from '../upstream/cluster.ts'
import {
  classifyUpstreamError,
  closedAfterReuse,
  DownstreamClosedError,
  transportFailureReason,
  UpstreamTimeoutError,
} from '../upstream/failure.ts'
import { PreviousPriorities } from '../upstream/lb/previous-priorities.ts'
import type { UpstreamEndpoint } from '../upstream/upstream-endpoint.ts'
import type { Mirroring } from './mirror-request.ts'
import { ReplayableBody } from './replayable-body.ts'
import { RequestBodyMeter } from './request-body-meter.ts'
import { type AttemptOwner, PerTryTimeoutError, UpstreamAttempt } from './upstream-attempt.ts'

export interface UpstreamRequestSpec {
  readonly method: string
  readonly path: string
  readonly headers: string[]
  readonly hasBody: boolean
  readonly timeoutMs: number
  /** The route's retry policy; undefined when retrying is off. */
  readonly retry?: RetryPolicy
  /** Mirrors for a request with a body: copies go out once the body is read, if it is within the bound. */
  readonly mirrors?: readonly MirrorPolicy[]
  /** Each try carries `x-envoy-attempt-count` (Envoy's include_request_attempt_count). */
  readonly includeAttemptCount?: boolean
  /** What sends them (set with `mirrors`). */
  readonly mirroring?: Mirroring
}

/** RFC 9110 §9.2.2: a request with one of these methods may be sent again after a connection failure. */
const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/** Envoy's host_selection_retry_max_attempts as Istio sets it: picks to find a host not tried yet. */
const HOST_SELECTION_ATTEMPTS = 5

/**
 * One proxied request: the route timeout, the replayable body, and the tries (one UpstreamAttempt each).
 * A try is retried only while no response byte has gone downstream.
 */
export class UpstreamRequest implements AttemptOwner, UpstreamExchange {
  readonly #ctx: RequestContext
  readonly #cluster: Cluster | undefined
  readonly #firstEndpoint: UpstreamEndpoint
  /** Endpoints of retried tries (the first try's is #firstEndpoint); made by the first retry. */
  #retriedEndpoints: UpstreamEndpoint[] | undefined
  #spec: UpstreamRequestSpec | undefined
  #attempt: UpstreamAttempt | undefined
  #retriesLeft = 0
  #retries = 0
  /** The request body kept for replay, once it has been read whole. */
  #body: Buffer | undefined
  #bodyChunks: Buffer[] | undefined
  /** A body of unknown or large length: it streams to each try while a bounded copy is kept for retries. */
  #replay: ReplayableBody | undefined
  /** Listeners made only on the paths that need them (a replayed body, a timeout waiting for the body). */
  #onBodyData: ((chunk: Buffer) => void) | undefined
  #onRequestEnd: (() => void) | undefined
  #routeTimer: NodeJS.Timeout | undefined
  #backoffTimer: NodeJS.Timeout | undefined
  /** retryRemoteLocalities: the priority levels tried, which later retries avoid. */
  #previousPriorities: PreviousPriorities | undefined
  /** A retry slot taken from the cluster, held through the backoff and the retried try (as Envoy holds it). */
  #holdsRetrySlot = false
  /** An interim (1xx) response went to the client: the response has started, nothing is retried. */
  #interimSent = false
  /** A try lost to the keep-alive race was sent again (once per request). */
  #resentAfterRace = false
  #done = false
  /** A gRPC call (HTTP/2, content-type application/grpc*): its messages are counted each way. */
  grpc = false
  /** Counts a body whose length is not declared (HTTP/2, chunked) or that carries gRPC messages. */
  #meter: RequestBodyMeter | undefined

  /** `cluster` is needed for retries (picking another endpoint, the retry circuit breaker). */
  constructor(ctx: RequestContext, endpoint: UpstreamEndpoint, cluster?: Cluster) {
    this.#ctx = ctx
    this.#cluster = cluster
    this.#firstEndpoint = endpoint
  }

  /** Dispatches the request; the response (or a local reply) reaches the downstream asynchronously. */
  start(spec: UpstreamRequestSpec): void {
    const ctx = this.#ctx
    this.#spec = spec
    this.#retriesLeft = this.#cluster === undefined ? 0 : (spec.retry?.numRetries ?? 0)
    if (this.#retriesLeft > 0 && spec.retry?.retryRemoteLocalities === true)
      this.#previousPriorities = new PreviousPriorities()
    ctx.res.on('close', this.#onDownstreamClose)
    ctx.upstreamExchange = this
    this.grpc = ctx.http2 && isGrpcRequest(ctx)
    if (spec.hasBody) this.#meterBody()
    const mirrored = spec.mirrors !== undefined && spec.mirrors.length > 0
    if (spec.hasBody && (this.#retriesLeft > 0 || mirrored)) {
      if (this.#replayable()) {
        // Read the (small) body whole first, so a retry or a mirror can send it again.
        const chunks: Buffer[] = []
        this.#bodyChunks = chunks
        this.#onBodyData = (chunk: Buffer): void => {
          chunks.push(chunk)
        }
        ctx.body.on('data', this.#onBodyData)
        ctx.body.once('end', () => this.#bodyEnded())
        return
      }
      // Of unknown length (chunked, HTTP/2, gRPC) or too large to read first: it streams to the first
      // try while a copy is kept up to the bound; a try is retried only while the copy is whole.
      const onEnd = mirrored ? (body: ReplayableBody): void => this.#streamedBodyEnded(body) : undefined
      this.#replay = new ReplayableBody(ctx.body, MAX_REPLAY_BODY_BYTES, onEnd, this.#meter)
    }
    this.#armRouteTimeout()
    this.#dispatch(this.#firstEndpoint)
  }

  /**
   * istio_request_bytes counts the body: an HTTP/1.1 body of declared length is that length (node:http
   * delivers exactly it, or the request fails); any other body, and every gRPC body, is counted as it passes.
   */
  #meterBody(): void {
    const ctx = this.#ctx
    const declared = ctx.http2 ? undefined : ctx.rawHeader('content-length')
    const length = declared === undefined ? -1 : Number(declared)
    if (!this.grpc && Number.isSafeInteger(length) && length >= 0) ctx.requestBodyBytes = length
    else this.#meter = new RequestBodyMeter(ctx, this.grpc)
  }

  /** A body is read whole first when its declared length is within the bound; others stream (#replay). */
  #replayable(): boolean {
    const length = this.#ctx.rawHeader('content-length')
    return length !== undefined && Number(length) <= MAX_REPLAY_BODY_BYTES
  }

  #bodyEnded(): void {
    if (this.#onBodyData !== undefined) this.#ctx.body.off('data', this.#onBodyData)
    this.#body = Buffer.concat(this.#bodyChunks ?? [])
    this.#bodyChunks = undefined
    this.#meter?.chunk(this.#body)
    if (this.#done) return
    const spec = this.#spec as UpstreamRequestSpec
    if (spec.mirrors !== undefined && spec.mirrors.length > 0) {
      spec.mirroring?.send(
        this.#ctx,
        spec.mirrors,
        spec.method,
        spec.path,
        spec.headers,
        spec.timeoutMs,
        this.#body,
      )
    }
    this.#armRouteTimeout()
    this.#dispatch(this.#firstEndpoint)
  }

  /** A streamed body ended within the bound: its mirrors go out now, as for a body read whole. */
  #streamedBodyEnded(body: ReplayableBody): void {
    const spec = this.#spec as UpstreamRequestSpec
    spec.mirroring?.send(
      this.#ctx,
      spec.mirrors as readonly MirrorPolicy[],
      spec.method,
      spec.path,
      spec.headers,
      spec.timeoutMs,
      body.whole as Buffer,
    )
  }

  /** Envoy starts the route timeout once the downstream request is complete; it spans every try. */
  #armRouteTimeout(): void {
    const spec = this.#spec as UpstreamRequestSpec
    if (spec.timeoutMs <= 0) return
    const ctx = this.#ctx
    if (!spec.hasBody || ctx.req.complete) {
      this.#startRouteTimer()
      return
    }
    this.#onRequestEnd = (): void => this.#startRouteTimer()
    ctx.body.once('end', this.#onRequestEnd)
  }

  #startRouteTimer(): void {
    if (this.#done) return
    const timeoutMs = (this.#spec as UpstreamRequestSpec).timeoutMs
    this.#routeTimer = setTimeout(UpstreamRequest.#routeTimedOut, timeoutMs, this)
  }

  /** Timer callbacks are static and get the request as their argument: no closure per request. */
  static #routeTimedOut(self: UpstreamRequest): void {
    self.#routeTimer = undefined
    self.#cluster?.stats.timedOut()
    if (self.#attempt !== undefined) {
      self.#attempt.abort(new UpstreamTimeoutError())
      return
    }
    // Between tries (backoff): answer now.
    self.#fail('timeout')
  }

  #dispatch(endpoint: UpstreamEndpoint): void {
    const ctx = this.#ctx
    const spec = this.#spec as UpstreamRequestSpec
    ctx.attemptCount++
    this.#previousPriorities?.attempted(endpoint.priority)
    const attempt = new UpstreamAttempt(this, ctx, endpoint)
    this.#attempt = attempt
    const headers = spec.includeAttemptCount ? withAttemptCount(spec.headers, ctx.attemptCount) : spec.headers
    attempt.start({
      method: spec.method,
      path: spec.path,
      headers,
      body: !spec.hasBody ? null : (this.#body ?? this.#replay?.iterable() ?? this.#streamedBody()),
      perTryTimeoutMs: spec.retry?.perTryTimeoutMs ?? 0,
    })
  }

  /** The downstream body streamed to the one try (no retry, no mirror), counted on its way when metered. */
  #streamedBody(): Readable | AsyncIterable<Buffer> {
    const body = this.#ctx.upstreamBody()
    return this.#meter === undefined ? body : this.#meter.counted(body)
  }

  /**
   * Envoy's Filter::onUpstream1xxHeaders: the 1xx goes to the client and the response counts as started,
   * so this request is not retried any more (router.cc resets its retry state there).
   */
  interimResponse(_attempt: UpstreamAttempt, status: number, fields: ResponseFields): void {
    this.#interimSent = true
    forwardInterimResponse(this.#ctx.res, status, fields)
  }

  acceptResponse(_attempt: UpstreamAttempt, status: number, fields: ResponseFields): boolean {
    // The retried try has its outcome: its slot goes back (a new retry takes a new one).
    this.#releaseRetrySlot()
    const policy = this.#spec?.retry
    if (policy === undefined || this.#ctx.res.headersSent || this.#interimSent) return true
    // gRPC conditions read grpc-status (a trailers-only answer); otherwise only errors can be retried.
    const grpcStatus = policy.on & GRPC_CONDITIONS ? grpcStatusOf(fields) : -1
    if ((status < 400 && grpcStatus <= 0) || !retriableResponse(policy, status, grpcStatus)) {
      this.#notRetried()
      return true
    }
    if (this.#retriesLeft === 0) {
      this.#ctx.setFlag('URX')
      this.#cluster?.stats.retryLimitExceeded()
      return true
    }
    return !this.#scheduleRetry()
  }

  /**
   * An outcome the policy does not retry: after a retry, Envoy counts upstream_rq_retry_success
   * (retry_state_impl.cc RetryStateImpl::shouldRetry: a retry was armed and this decision is NoRetry).
   */
  #notRetried(): void {
    if (this.#retries > 0) this.#cluster?.stats.retrySucceeded()
  }

  attemptEnded(_attempt: UpstreamAttempt, lastChunk: Buffer | undefined): void {
    this.#finish()
    this.#ctx.res.end(lastChunk)
  }

  attemptFailed(attempt: UpstreamAttempt, err: Error, sent: boolean): void {
    this.#attempt = undefined
    const ctx = this.#ctx
    const kind = classifyUpstreamError(err, sent)
    if (ctx.res.headersSent || attempt.accepted) {
      // Too late for a local reply: reset the downstream as Envoy resets the stream.
      this.#finish()
      ctx.setFlag(kind === 'timeout' ? 'UT' : kind === 'remoteReset' ? 'UR' : 'UC')
      ctx.res.destroy()
      return
    }
    if (kind === 'connectionTermination' && this.#resendAfterRace(attempt, err)) return
    const policy = this.#interimSent ? undefined : this.#spec?.retry
    const retriable =
      policy !== undefined &&
      (err instanceof PerTryTimeoutError || !(err instanceof UpstreamTimeoutError)) &&
      retriableFailure(policy, kind)
    if (retriable && this.#retriesLeft > 0 && this.#scheduleRetry()) return
    if (policy !== undefined && !retriable) this.#notRetried()
    this.#fail(kind, kind === 'connectFailure' ? transportFailureReason(err) : undefined)
    // After the failure's own flag, as Envoy orders them (`UF,URX`).
    if (retriable && this.#retriesLeft === 0) {
      ctx.setFlag('URX')
      this.#cluster?.stats.retryLimitExceeded()
    }
  }

  /**
   * The keep-alive race: the upstream closed a reused connection as this request was written to it, and
   * nothing of the response came back. An idempotent request whose body is in hand is sent once more, at
   * once, on another connection to the same endpoint (RFC 9110 §9.2.2 and RFC 9112 §9.3.1 allow it; Go's
   * http.Transport does the same), rather than answered 503 UC as Envoy does unless retryOn has `reset`.
   * It is not a retry of the route's policy: no retry budget, backoff or retry stat.
   */
  #resendAfterRace(attempt: UpstreamAttempt, err: Error): boolean {
    const spec = this.#spec as UpstreamRequestSpec
    if (this.#resentAfterRace || this.#interimSent || !IDEMPOTENT_METHODS.has(spec.method)) return false
    if (spec.hasBody && this.#body === undefined) return false
    if (!closedAfterReuse(err) || this.#cluster?.admits(attempt.endpoint) === false) return false
    this.#resentAfterRace = true
    this.#dispatch(attempt.endpoint)
    return true
  }

  /** Takes a retry slot and waits out the backoff; false when the cluster's retry limit says no. */
  #scheduleRetry(): boolean {
    if (this.#replay !== undefined && (!this.#replay.replayable || this.#replay.failed)) return false
    const cluster = this.#cluster as Cluster
    // Envoy's RetryState gives back the slot of the previous retry once that retry's outcome is known.
    this.#releaseRetrySlot()
    if (!cluster.tryStartRetry()) return false
    this.#holdsRetrySlot = true
    this.#retriesLeft--
    this.#retries++
    cluster.stats.retried()
    this.#attempt = undefined
    const policy = this.#spec?.retry as RetryPolicy
    this.#backoffTimer = setTimeout(UpstreamRequest.#backoffEnded, backoffMs(policy, this.#retries), this)
    return true
  }

  static #backoffEnded(self: UpstreamRequest): void {
    self.#backoffTimer = undefined
    // A read still pending for the given-up try ended while waiting and took the body over the bound.
    if (self.#replay !== undefined && !self.#replay.replayable) {
      self.#fail('retryBufferOverflow')
      return
    }
    const cluster = self.#cluster as Cluster
    const endpoint = self.#pickRetryHost(cluster)
    if (endpoint === undefined) {
      cluster.stats.noneHealthy()
      self.#fail('noHealthyUpstream')
      return
    }
    if (!cluster.admits(endpoint)) {
      self.#fail('overflow')
      return
    }
    self.#retriedEndpoints ??= []
    self.#retriedEndpoints.push(endpoint)
    self.#dispatch(endpoint)
  }

  #releaseRetrySlot(): void {
    if (!this.#holdsRetrySlot) return
    this.#holdsRetrySlot = false
    this.#cluster?.endRetry()
  }

  /**
   * Envoy's previous_hosts predicate: prefer an endpoint not tried yet, within a few picks; with
   * retryRemoteLocalities, levels already tried are skipped as previous_priorities says.
   */
  #pickRetryHost(cluster: Cluster): UpstreamEndpoint | undefined {
    const skipLevels = this.#previousPriorities?.skipLevels(cluster.levelHealth) ?? 0
    let endpoint = cluster.pick(this.#ctx, skipLevels)
    if (this.#spec?.retry?.skipPreviousHosts !== true) return endpoint
    for (let i = 1; i < HOST_SELECTION_ATTEMPTS && endpoint !== undefined && this.#tried(endpoint); i++) {
      endpoint = cluster.pick(this.#ctx, skipLevels)
    }
    return endpoint
  }

  /** Whether a try already went to `endpoint`. */
  #tried(endpoint: UpstreamEndpoint): boolean {
    return endpoint === this.#firstEndpoint || this.#retriedEndpoints?.includes(endpoint) === true
  }

  #fail(kind: Parameters<typeof sendLocalReply>[1], transportFailure?: string): void {
    this.#finish()
    // Envoy's chargeUpstreamAbort: the 503 or 504 answered for the upstream counts as its response
    // code; a retry buffer overflow is the router's own answer (router.cc charges nothing for it).
    if (kind !== 'retryBufferOverflow' && !this.#ctx.res.headersSent)
      this.#cluster?.stats.chargeCode(LocalReplies[kind].status)
    sendLocalReply(this.#ctx, kind, transportFailure)
  }

  /** The connection manager answers the client itself (a stream deadline): stop the upstream side quietly. */
  cancel(): void {
    if (this.#done) return
    const attempt = this.#attempt
    this.#finish()
    attempt?.abort(new DownstreamClosedError())
  }

  readonly #onDownstreamClose = (): void => {
    if (this.#done) return
    // The client went away before the response ended: stop the upstream exchange too (DC, or DR for a reset stream).
    this.#ctx.downstreamGone()
    const attempt = this.#attempt
    this.#finish()
    attempt?.abort(new DownstreamClosedError())
  }

  #finish(): void {
    if (this.#done) return
    this.#done = true
    if (this.#routeTimer !== undefined) clearTimeout(this.#routeTimer)
    if (this.#backoffTimer !== undefined) clearTimeout(this.#backoffTimer)
    this.#releaseRetrySlot()
    this.#replay?.release()
    // The 'close' listener stays on the response (it returns at once once done): one removeListener
    // less per request, and the response and this request are dropped together anyway.
    if (this.#onRequestEnd !== undefined) this.#ctx.body.off('end', this.#onRequestEnd)
  }
}

/** A copy of the upstream headers with `x-envoy-attempt-count` set (a client's own value replaced). */
export function withAttemptCount(headers: readonly string[], count: number): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]
    if (name.length === 21 && name.toLowerCase() === 'x-envoy-attempt-count') continue
    out.push(name, headers[i + 1])
  }
  out.push('x-envoy-attempt-count', String(count))
  return out
}

/** The grpc-status response header (a trailers-only gRPC answer), or -1. */
function grpcStatusOf(fields: ResponseFields): number {
  const value = fields['grpc-status']
  return typeof value === 'string' ? Number(value) : -1
}
