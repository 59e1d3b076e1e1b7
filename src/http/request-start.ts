// What the connection manager does to a new request before its filters: path normalization, then the filter chain.

import { resumeFilters } from './filter-chain.ts'
import type { RequestContext } from './request-context.ts'
import { sendLocalReply } from './respond.ts'

/**
 * Starts `ctx` (HTTP/1.1 and HTTP/2 alike). Envoy's connection manager normalizes the path in
 * ActiveStream::decodeHeaders (ConnectionManagerUtility::maybeNormalizePath) before the first decoder
 * filter runs, so route matching, policies and the upstream request all see the normalized path; a path
 * it rejects gets 400 `path_normalization_failed` and no filter runs. Done here rather than as a filter,
 * a request pays for it without one more call through the chain's megamorphic call site.
 */
export function startRequest(ctx: RequestContext): void {
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
