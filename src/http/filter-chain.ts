// Runs a listener's ordered filters over a request, phase by phase.

import type { HttpFilter } from './filter.ts'
import type { RequestContext } from './request-context.ts'

/** Runs request-header phases from `ctx.filterIndex` until a filter stops the chain or the list ends. */
export function resumeFilters(ctx: RequestContext): void {
  const filters = ctx.listener.filters
  while (ctx.filterIndex < filters.length) {
    const filter = filters[ctx.filterIndex++]
    if (filter.onRequestHeaders !== undefined && filter.onRequestHeaders(ctx) === 'stop') return
  }
}

export function runResponseHeaders(ctx: RequestContext, status: number, headers: string[]): void {
  const filters = ctx.listener.filters
  for (let i = filters.length - 1; i >= 0; i--) filters[i].onResponseHeaders?.(ctx, status, headers)
}

export function runLog(ctx: RequestContext): void {
  for (const filter of ctx.listener.filters) filter.onLog?.(ctx)
}

export type { HttpFilter }
