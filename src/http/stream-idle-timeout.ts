// Envoy's stream idle timeout firing on a request: counted, the upstream side stopped, and the client answered or reset.

import type { RequestContext } from './request-context.ts'
import { sendLocalReply } from './respond.ts'

/**
 * A request with no activity either way for `limits.streamIdleTimeout`: Envoy's
 * ActiveStream::onIdleTimeout. It counts downstream_rq_idle_timeout, sets flag SI and sends the local
 * reply `stream timeout` with Utility::maybeRequestTimeoutCode's status (504 once the request was read
 * whole, 408 before; a gRPC client gets the status mapped from it); once the response has started,
 * sendLocalReply resets the stream instead. The codecs arm the timer: the HTTP/1.1 socket's timeout and
 * the HTTP/2 stream's own (node refreshes both on every read and write).
 */
export function expireIdleStream(ctx: RequestContext): void {
  ctx.listener.countLimit('downstream_rq_idle_timeout')
  const exchange = ctx.upstreamExchange
  ctx.upstreamExchange = undefined
  exchange?.cancel()
  sendLocalReply(ctx, ctx.req.complete ? 'streamIdleTimeout' : 'streamIdleTimeoutBeforeRequestEnd')
}
