// What the connection manager does to a new request before its filters: the overload check, the debug summary, path normalization, then the filter chain.

import { getLogLevel } from '../telemetry/log.ts'
import { resumeFilters } from './filter-chain.ts'
import type { RequestContext } from './request-context.ts'
import { RequestSummary } from './request-summary.ts'
import { sendLocalReply } from './respond.ts'

/**
 * Starts `ctx` (HTTP/1.1 and HTTP/2 alike). Envoy's connection manager normalizes the path in
 * ActiveStream::decodeHeaders (ConnectionManagerUtility::maybeNormalizePath) before the first decoder
 * filter runs, so route matching, policies and the upstream request all see the normalized path; a path
 * it rejects gets 400 `path_normalization_failed` and no filter runs (its debug summary is still
 * written). Done here rather than as filters, neither costs a call through the chain's megamorphic
 * call site, and the summary costs nothing but the level check while debug is off.
 */
export function startRequest(ctx: RequestContext): void {
  // Envoy drops a new request under stop_accepting_requests as soon as its headers are decoded, before
  // any filter; a scaled state sheds that share of requests (conn_manager_impl.cc, bernoulli of the state).
  const shed = ctx.listener.overload.stopAcceptingRequests
  if (shed > 0 && (shed >= 1 || Math.random() < shed)) {
    ctx.listener.countLimit('downstream_rq_overload_close')
    sendLocalReply(ctx, 'overloaded')
    return
  }
  // Read per request, so `POST /logging?level=debug` takes effect on the next one.
  if (getLogLevel() === 'debug') new RequestSummary(ctx).watch()
  const url = ctx.url
  const normalized = ctx.listener.pathNormalizer.normalize(url)
  if (normalized !== url) {
    if (normalized === undefined) {
      sendLocalReply(ctx, 'pathNormalizationFailed')
      return
    }
    ctx.rewriteUrl(normalized)
  }
  resumeFilters(ctx)
}
