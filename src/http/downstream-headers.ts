// Builds the downstream response's header list from the upstream's raw response headers.

import { HeaderEdits } from '../route/header-edits.ts'
import { removeHeaders } from '../route/header-list.ts'
import { connectionTokens, isHopByHop } from './hop-by-hop.ts'
import type { RequestContext } from './request-context.ts'

const serviceTimeHeader = 'x-envoy-upstream-service-time'

/** Lowercase names, hop-by-hop headers dropped, route and destination response edits applied. */
export function buildDownstreamHeaders(ctx: RequestContext, raw: readonly (Buffer | string)[]): string[] {
  const out: string[] = []
  let extraHop: Set<string> | undefined
  // Envoy overwrites the header: through a pair of sidecars the client sees the outer proxy's time only.
  const setServiceTime = ctx.upstreamServiceTime >= 0
  for (let i = 0; i < raw.length; i += 2) {
    const rawName = raw[i]
    const rawValue = raw[i + 1]
    const name = (typeof rawName === 'string' ? rawName : rawName.toString('latin1')).toLowerCase()
    const value = typeof rawValue === 'string' ? rawValue : rawValue.toString('latin1')
    if (isHopByHop(name)) {
      if (name === 'connection') extraHop = connectionTokens(value)
      continue
    }
    if (setServiceTime && name === serviceTimeHeader) continue
    out.push(name, value)
  }
  if (extraHop !== undefined) removeHeaders(out, extraHop)
  if (setServiceTime) out.push(serviceTimeHeader, String(ctx.upstreamServiceTime))
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
