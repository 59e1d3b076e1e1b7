// Builds the upstream request's header list from the downstream rawHeaders, as Envoy's router does.

import type { RequestContext } from '../http/request-context.ts'
import { newRequestId } from '../http/request-id.ts'
import { connectionTokens, isHopByHop } from '../protocol/hop-by-hop.ts'
import { HeaderEdits } from '../route/header-edits.ts'
import { removeHeaders } from '../route/header-list.ts'
import { writeTraceHeaders } from '../telemetry/trace-context.ts'

/**
 * Drops hop-by-hop headers (keeping `te: trailers`), sets Host to `authority`, sets x-forwarded-proto
 * and x-request-id when absent, then applies the route's and the destination's header edits. Names come
 * out lowercase. x-forwarded-client-cert is dropped unless the connection is mTLS, where this hop's
 * certificate details are appended to it (as Envoy inside Istio). x-forwarded-for passes unchanged:
 * Istio runs sidecars with Envoy's use_remote_address off (only gateways turn it on), and Envoy then
 * neither appends to it nor trusts it.
 */
export function buildUpstreamHeaders(
  ctx: RequestContext,
  authority: string,
  originalPath?: string,
): string[] {
  const raw = ctx.req.rawHeaders
  const out: string[] = ['host', authority]
  let extraHop: Set<string> | undefined
  let hasProto = false
  let requestId: string | undefined
  let clientCert: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase()
    const value = raw[i + 1]
    if (name === 'host') continue
    if (isHopByHop(name)) {
      if (name === 'connection') extraHop = connectionTokens(value)
      else if (name === 'te' && value.trim().toLowerCase() === 'trailers') out.push('te', 'trailers')
      continue
    }
    if (name === 'x-forwarded-client-cert') {
      // Envoy keeps a client's XFCC only on an mTLS connection (mutateXfccRequestHeader): appended to below.
      if (ctx.mtls !== undefined) clientCert = clientCert === undefined ? value : `${clientCert},${value}`
      continue
    }
    if (name === 'x-forwarded-proto') hasProto = true
    else if (name === 'x-request-id') requestId = value
    else if (name === 'x-envoy-original-path' && originalPath !== undefined) continue
    out.push(name, value)
  }
  if (extraHop !== undefined) removeHeaders(out, extraHop)
  // Istio's inbound forward_client_cert_details APPEND_FORWARD: this hop's certificate details appended.
  const mtls = ctx.mtls
  if (mtls !== undefined)
    out.push('x-forwarded-client-cert', clientCert === undefined ? mtls.xfcc : `${clientCert},${mtls.xfcc}`)
  if (!hasProto) out.push('x-forwarded-proto', ctx.scheme)
  if (requestId === undefined) {
    requestId = newRequestId()
    out.push('x-request-id', requestId)
  }
  ctx.requestId = requestId
  if (originalPath !== undefined) out.push('x-envoy-original-path', originalPath)
  const route = ctx.route
  if (route !== undefined && route.requestHeaders !== HeaderEdits.none) route.requestHeaders.applyTo(out)
  const dest = ctx.destination
  if (dest !== undefined && dest.requestHeaders !== HeaderEdits.none) dest.requestHeaders.applyTo(out)
  // A sampled request's span is the upstream's parent (Envoy's tracer injects its span context).
  const trace = ctx.trace
  if (trace !== undefined) writeTraceHeaders(out, trace)
  return out
}
