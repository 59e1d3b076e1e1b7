// Runs a listener's ordered filters over a request, phase by phase.

import type { HttpFilter } from './filter.ts'
import type { RequestContext } from './request-context.ts'
import { sendResponse } from './respond.ts'

/**
 * Runs request-header phases from `ctx.filterIndex` until a filter stops the chain or the list ends.
 * A filter that throws costs its request a 500, never the process.
 */
export function resumeFilters(ctx: RequestContext): void {
  const filters = ctx.listener.filters
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

/**
 * Runs response-header phases in reverse order, for the filters whose request phase ran: as Envoy's filters
 * keep per-request state (CORS adds nothing to a reply that a fault abort before it sent).
 */
export function runResponseHeaders(ctx: RequestContext, status: number, headers: string[]): void {
  const filters = ctx.listener.filters
  for (let i = Math.min(ctx.filterIndex, filters.length) - 1; i >= 0; i--) {
    filters[i].onResponseHeaders?.(ctx, status, headers)
  }
}

export type { HttpFilter }
