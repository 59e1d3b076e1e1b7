// The interface every HTTP filter implements: phases that return continue or stop, never call `next()`.

import type { ListenerModel, Model } from '../config/model.ts'
import type { RequestContext } from './request-context.ts'

/**
 * `continue` runs the next filter; `stop` pauses the chain: the filter has answered the request itself,
 * or will call `resumeFilters(ctx)` later (after a delay, an async check…).
 */
export type FilterStatus = 'continue' | 'stop'

export interface HttpFilter {
  readonly name: string
  /**
   * Whether the filter has anything to do on `listener` under `model` (its policies exist); absent means
   * always. A listener's chain leaves out the filters that do not apply, so each request pays only for
   * the filters its model uses (every filter call costs: the call site sees many filter classes).
   */
  appliesTo?(listener: ListenerModel, model: Model): boolean
  /** Request headers are in; the body has not been read. */
  onRequestHeaders?(ctx: RequestContext): FilterStatus
  /** Response headers (flat, lowercase names) are about to go downstream; edit them in place. */
  onResponseHeaders?(ctx: RequestContext, status: number, headers: string[]): void
}
