// Normalizes the request path before anything reads it, as Envoy's connection manager does with Istio's meshConfig.pathNormalization.

import type { FilterStatus, HttpFilter } from '../filter.ts'
import { type PathNormalizationType, PathNormalizer } from '../path-normalization.ts'
import type { RequestContext } from '../request-context.ts'
import { sendLocalReply } from '../respond.ts'

/**
 * First in the chain, so route matching, policies and the upstream request all see the normalized path
 * (Envoy normalizes in the HCM before its filters run). A path Envoy rejects gets 400
 * `path_normalization_failed`.
 */
export class PathNormalizationFilter implements HttpFilter {
  readonly name = 'path-normalization'
  readonly #normalizer: PathNormalizer

  constructor(type: PathNormalizationType) {
    this.#normalizer = new PathNormalizer(type)
  }

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const url = ctx.url
    const normalized = this.#normalizer.normalize(url)
    if (normalized === url) return 'continue'
    if (normalized === undefined) {
      sendLocalReply(ctx, 'pathNormalizationFailed')
      return 'stop'
    }
    ctx.rewriteUrl(normalized)
    return 'continue'
  }
}
