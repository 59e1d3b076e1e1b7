// Starts a request's trace when its direction traces: honours the downstream's sampling decision, else samples at the policy's percentage.

import type { ListenerModel, Model } from '../../config/model.ts'
import { decideTrace } from '../../telemetry/trace-context.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import type { RequestContext } from '../request-context.ts'

/**
 * First in the chain, where Envoy's connection manager starts its span before any filter runs, so a
 * request the later filters answer (404 NR, 403 RBAC, 429 RL) is traced too. In a chain only while the
 * listener's direction has tracing: without it, a request pays nothing for tracing.
 */
export class TracingFilter implements HttpFilter {
  readonly name = 'tracing'

  appliesTo(listener: ListenerModel, model: Model): boolean {
    return model.telemetry[listener.direction].tracing !== undefined
  }

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const policy = ctx.telemetry.tracing
    if (policy !== undefined) ctx.trace = decideTrace(policy, ctx.req.rawHeaders)
    return 'continue'
  }
}
