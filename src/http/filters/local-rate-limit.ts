// Local rate limiting (Envoy's local_ratelimit filter): 429 `local_rate_limited` once a token bucket is empty.

import type { RateLimitSpec } from '../../bootstrap/rate-limits.ts'
import { parseDurationMs } from '../../config/duration.ts'
import type { SharedCounters } from '../../shared/shared-counters.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import type { RequestContext } from '../request-context.ts'
import { sendLocalReply } from '../respond.ts'
import { TokenBucket } from './token-bucket.ts'

export class LocalRateLimitFilter implements HttpFilter {
  readonly name = 'local-rate-limit'
  /** The listener-wide bucket, if any. */
  readonly #listener: TokenBucket | undefined
  /** Buckets by route name. */
  readonly #routes: ReadonlyMap<string, TokenBucket>

  private constructor(listener: TokenBucket | undefined, routes: ReadonlyMap<string, TokenBucket>) {
    this.#listener = listener
    this.#routes = routes
  }

  /**
   * The filter for the listener on `port`, or undefined when no rate limit applies there. Its buckets
   * live in `counters`, one per listener, route and bucket settings for every worker: a reload that keeps
   * a bucket's settings keeps its tokens.
   */
  static forListener(
    limits: readonly RateLimitSpec[],
    port: number,
    counters: SharedCounters,
  ): LocalRateLimitFilter | undefined {
    let listener: TokenBucket | undefined
    const routes = new Map<string, TokenBucket>()
    for (const limit of limits) {
      if (limit.port !== undefined && limit.port !== port) continue
      const b = limit.tokenBucket
      const fillMs = parseDurationMs(b.fillInterval)
      const key = `ratelimit|${port}|${limit.route ?? ''}|${b.maxTokens}|${b.tokensPerFill}|${fillMs}`
      const bucket = new TokenBucket(b.maxTokens, b.tokensPerFill, fillMs, counters, counters.block(key))
      if (limit.route === undefined) listener = bucket
      else routes.set(limit.route, bucket)
    }
    return listener === undefined && routes.size === 0
      ? undefined
      : new LocalRateLimitFilter(listener, routes)
  }

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const route = this.#routes.size === 0 ? undefined : this.#routes.get(ctx.route?.name ?? '')
    if ((route === undefined || route.take()) && (this.#listener === undefined || this.#listener.take())) {
      return 'continue'
    }
    sendLocalReply(ctx, 'rateLimited')
    return 'stop'
  }
}
