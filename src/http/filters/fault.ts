// Istio's fault injection (Envoy's fault filter): delays the request, or aborts it, per the route's `fault`.

import { type FaultAbort, type FaultPolicy, rollPercent } from '../../route/fault-policy.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import { resumeFilters } from '../filter-chain.ts'
import { grpcStatusForHttp, isGrpcRequest } from '../grpc.ts'
import { LocalReplies } from '../local-reply.ts'
import type { RequestContext } from '../request-context.ts'
import { sendGrpcReply, sendResponse } from '../respond.ts'

export class FaultFilter implements HttpFilter {
  readonly name = 'fault'

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const fault = ctx.route?.fault
    if (fault === undefined) return 'continue'
    if (fault.delayMs > 0 && rollPercent(fault.delayPercent)) {
      ctx.setFlag('DI')
      new DelayedRequest(ctx, fault).start()
      return 'stop'
    }
    return abortIfDrawn(ctx, fault) ? 'stop' : 'continue'
  }
}

/** As Envoy, the abort is drawn after any delay; true when the request was answered. */
function abortIfDrawn(ctx: RequestContext, fault: FaultPolicy): boolean {
  const abort = fault.abort
  if (abort === undefined || !rollPercent(abort.percent)) return false
  sendAbort(ctx, abort)
  return true
}

/** Envoy's local reply for an abort: `fault filter abort` as text, or a trailers-only gRPC answer. */
function sendAbort(ctx: RequestContext, abort: FaultAbort): void {
  const reply = LocalReplies.faultAbort
  ctx.setFlag(reply.flag)
  ctx.responseCodeDetails = reply.details
  const httpStatus = abort.httpStatus ?? 200
  if (isGrpcRequest(ctx)) {
    sendGrpcReply(ctx, abort.grpcStatus ?? grpcStatusForHttp(httpStatus), reply.body)
    return
  }
  sendResponse(ctx, httpStatus, reply.body)
}

/** A request held for the injected delay; made only when a delay is drawn. */
class DelayedRequest {
  readonly #ctx: RequestContext
  readonly #fault: FaultPolicy
  #timer: NodeJS.Timeout | undefined

  constructor(ctx: RequestContext, fault: FaultPolicy) {
    this.#ctx = ctx
    this.#fault = fault
  }

  start(): void {
    this.#timer = setTimeout(this.#onTimer, this.#fault.delayMs)
    this.#ctx.res.once('close', this.#onClose)
  }

  readonly #onTimer = (): void => {
    const ctx = this.#ctx
    ctx.res.off('close', this.#onClose)
    if (abortIfDrawn(ctx, this.#fault)) return
    resumeFilters(ctx)
  }

  readonly #onClose = (): void => {
    clearTimeout(this.#timer)
    this.#ctx.downstreamGone()
  }
}
