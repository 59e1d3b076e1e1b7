// The interface every HTTP filter implements: phases that return continue or stop, never call `next()`.

import type { RequestContext } from './request-context.ts'

/**
 * `continue` runs the next filter; `stop` pauses the chain: the filter has answered the request itself,
 * or will call `resumeFilters(ctx)` later (after a delay, an async check…).
 */
export type FilterStatus = 'continue' | 'stop'

export interface HttpFilter {
  readonly name: string
  /** Request headers are in; the body has not been read. */
  onRequestHeaders?(ctx: RequestContext): FilterStatus
  /** Response headers (flat, lowercase names) are about to go downstream; edit them in place. */
  onResponseHeaders?(ctx: RequestContext, status: number, headers: string[]): void
}
