// Runs a listener's ordered filters over a request's headers, first to last, until one stops the chain.

import type { HttpFilter } from './filter.ts'
import type { RequestContext } from './request-context.ts'
import { sendResponse } from './respond.ts'

/**
 * Runs request-header phases from `ctx.filterIndex` until a filter stops the chain or the list ends.
 * A filter that throws costs its request a 500, never the process.
 */
export function resumeFilters(ctx: RequestContext): void {
  const filters = ctx.filters
  try {
    while (ctx.filterIndex < filters.length) {
      const filter = filters[ctx.filterIndex++]
      if (filter.onRequestHeaders !== undefined && filter.onRequestHeaders(ctx) === 'stop') return
    }
  } catch (err) {
    process.emitWarning(err as Error)
    ctx.responseCodeDetails = 'internal_error'
    sendResponse(ctx, 500, 'internal error')
  }
}

export type { HttpFilter }
