// Runs the filters' response-headers phase, last filter first (as Envoy's encoder filters), on headers about to go downstream.

import type { RequestContext } from './request-context.ts'
import { overwriteServerHeader } from './server-header.ts'

/**
 * Runs response-header phases in reverse order, for the filters whose request phase ran: as Envoy's filters
 * keep per-request state (CORS adds nothing to a reply that a fault abort before it sent).
 */
export function runResponseHeaders(ctx: RequestContext, status: number, headers: string[]): void {
  const filters = ctx.filters
  for (let i = Math.min(ctx.filterIndex, filters.length) - 1; i >= 0; i--) {
    filters[i].onResponseHeaders?.(ctx, status, headers)
  }
  // After the filters, as Envoy's connection manager sets it when it encodes the headers.
  overwriteServerHeader(headers, ctx.listener.model.direction)
}
