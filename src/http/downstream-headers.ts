// Builds the downstream response's header list from the upstream's response header fields.

import { connectionTokens, isHopByHop } from '../protocol/hop-by-hop.ts'
import { HeaderEdits } from '../route/header-edits.ts'
import { removeHeaders } from '../route/header-list.ts'
import type { RequestContext } from './request-context.ts'

const serviceTimeHeader = 'x-envoy-upstream-service-time'

/**
 * An upstream response's header fields by lowercase name, as undici parses them for its dispatch
 * handlers, node:http2 gives them (pseudo-headers included) and node:http's `headersDistinct` has them.
 */
export type ResponseFields = Readonly<Record<string, string | readonly string[] | undefined>>

/**
 * Hop-by-hop headers and pseudo-headers dropped, route and destination response edits applied. Fields
 * of one name come out together, in the order received: only their relative order carries meaning.
 */
export function buildDownstreamHeaders(ctx: RequestContext, fields: ResponseFields): string[] {
  const out: string[] = []
  // Envoy overwrites the header: through a pair of sidecars the client sees the outer proxy's time only.
  const setServiceTime = ctx.upstreamServiceTime >= 0
  for (const name in fields) {
    const value = fields[name]
    if (value === undefined || name.charCodeAt(0) === 0x3a || isHopByHop(name)) continue
    if (setServiceTime && name === serviceTimeHeader) continue
    if (typeof value === 'string') out.push(name, value)
    else for (const one of value) out.push(name, one)
  }
  const connection = fields.connection
  if (connection !== undefined) {
    const extraHop = connectionTokens(typeof connection === 'string' ? connection : connection.join(','))
    if (extraHop !== undefined) removeHeaders(out, extraHop)
  }
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
