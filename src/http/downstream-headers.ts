// Builds the downstream response's header list from the upstream's raw response headers.

import { HeaderEdits } from '../route/header-edits.ts'
import { connectionTokens, isHopByHop } from './hop-by-hop.ts'
import type { RequestContext } from './request-context.ts'

/** Lowercase names, hop-by-hop headers dropped, route and destination response edits applied. */
export function buildDownstreamHeaders(ctx: RequestContext, raw: readonly Buffer[]): string[] {
  const out: string[] = []
  let extraHop: Set<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toString('latin1').toLowerCase()
    const value = raw[i + 1].toString('latin1')
    if (isHopByHop(name)) {
      if (name === 'connection') extraHop = connectionTokens(value)
      continue
    }
    out.push(name, value)
  }
  if (extraHop !== undefined) {
    let w = 0
    for (let r = 0; r < out.length; r += 2) {
      if (extraHop.has(out[r])) continue
      out[w] = out[r]
      out[w + 1] = out[r + 1]
      w += 2
    }
    out.length = w
  }
  if (ctx.upstreamServiceTime >= 0) out.push('x-envoy-upstream-service-time', String(ctx.upstreamServiceTime))
  applyResponseEdits(ctx, out)
  return out
}

/** The route's and the destination's `headers.response` edits (destination last, as Istio orders them). */
export function applyResponseEdits(ctx: RequestContext, headers: string[]): void {
  const route = ctx.route
  if (route !== undefined && route.responseHeaders !== HeaderEdits.none)
    route.responseHeaders.applyTo(headers)
  const dest = ctx.destination
  if (dest !== undefined && dest.responseHeaders !== HeaderEdits.none) dest.responseHeaders.applyTo(headers)
}
