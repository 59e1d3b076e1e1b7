// A request's deadline under its route's max_stream_duration, counted from the request headers, as Envoy's connection manager keeps it.

import type { MaxStreamDuration } from '../route/route.ts'
import { grpcTimeoutMs } from './grpc.ts'
import type { RequestContext } from './request-context.ts'
import { sendLocalReply } from './respond.ts'

/**
 * The deadline in ms for a request with this `grpc-timeout` value under `duration`, or undefined for
 * none: Envoy's ActiveStream::refreshDurationTimeout. The header counts whatever the content type (Envoy
 * reads it with Grpc::Common::getGrpcTimeout alone); grpc_timeout_header_max 0 means uncapped, a
 * max_stream_duration of 0 means no deadline (Istio sets no connection-manager fallback on sidecars).
 */
export function streamDeadlineMs(
  duration: MaxStreamDuration,
  grpcTimeout: string | undefined,
): number | undefined {
  const fromHeader = duration.grpcTimeoutHeaderMaxMs === undefined ? undefined : grpcTimeoutMs(grpcTimeout)
  if (fromHeader === undefined) {
    return duration.maxStreamDurationMs > 0 ? duration.maxStreamDurationMs : undefined
  }
  const cap = duration.grpcTimeoutHeaderMaxMs ?? 0
  return cap !== 0 && fromHeader > cap ? cap : fromHeader
}

/**
 * Arms the deadline of `ctx` (`deadlineMs` from when its headers arrived). When it runs out the upstream
 * exchange is stopped and the client answered with Envoy's `downstream duration timeout` (the stream is
 * reset if the response has started). Made only for requests that have a deadline.
 */
export class StreamDeadline {
  readonly #ctx: RequestContext
  readonly #timer: NodeJS.Timeout

  constructor(ctx: RequestContext, deadlineMs: number) {
    this.#ctx = ctx
    // Envoy subtracts the time the stream has been alive already.
    const left = Math.max(0, deadlineMs - (performance.now() - ctx.startTime))
    this.#timer = setTimeout(StreamDeadline.#expired, left, this)
    ctx.res.once('close', this.#clear)
  }

  readonly #clear = (): void => {
    clearTimeout(this.#timer)
  }

  static #expired(self: StreamDeadline): void {
    const ctx = self.#ctx
    if (ctx.res.writableEnded || ctx.res.destroyed) return
    const exchange = ctx.upstreamExchange
    ctx.upstreamExchange = undefined
    exchange?.cancel()
    ctx.listener.countLimit('downstream_rq_max_duration_reached')
    // Utility::maybeRequestTimeoutCode: 408 while the request is still arriving, else 504.
    sendLocalReply(ctx, ctx.req.complete ? 'streamDurationTimeout' : 'streamDurationTimeoutBeforeRequestEnd')
  }
}
