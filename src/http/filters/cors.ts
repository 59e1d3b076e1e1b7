// Istio's corsPolicy (Envoy's CORS filter): answers preflights itself and adds CORS headers to allowed responses.

import { type CorsPolicy, originAllowed } from '../../route/cors-policy.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import type { RequestContext } from '../request-context.ts'
import { sendResponse } from '../respond.ts'

export class CorsFilter implements HttpFilter {
  readonly name = 'cors'

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const policy = ctx.route?.cors
    if (policy === undefined) return 'continue'
    const origin = ctx.rawHeader('origin')
    if (origin === undefined || origin === '') return 'continue'
    const preflight = ctx.method === 'OPTIONS' && ctx.rawHeader('access-control-request-method') !== undefined
    const allowed = originAllowed(policy, origin)
    if (!preflight) return 'continue'
    if (!allowed) {
      if (policy.forwardUnmatchedPreflights) return 'continue'
      ctx.responseCodeDetails = 'cors_preflight'
      sendResponse(ctx, 200, undefined)
      return 'stop'
    }
    ctx.responseCodeDetails = 'cors_preflight'
    sendResponse(ctx, 200, undefined, preflightHeaders(policy, origin))
    return 'stop'
  }

  /** An actual (non-preflight) cross-origin response from an allowed origin gets the CORS headers. */
  onResponseHeaders(ctx: RequestContext, _status: number, headers: string[]): void {
    const policy = ctx.route?.cors
    if (policy === undefined || ctx.responseCodeDetails === 'cors_preflight') return
    const origin = ctx.rawHeader('origin')
    if (origin === undefined || origin === '' || !originAllowed(policy, origin)) return
    headers.push('access-control-allow-origin', origin)
    if (policy.allowCredentials) headers.push('access-control-allow-credentials', 'true')
    if (policy.exposeHeaders !== undefined)
      headers.push('access-control-expose-headers', policy.exposeHeaders)
  }
}

function preflightHeaders(policy: CorsPolicy, origin: string): string[] {
  const headers = ['access-control-allow-origin', origin]
  if (policy.allowCredentials) headers.push('access-control-allow-credentials', 'true')
  if (policy.allowMethods !== undefined) headers.push('access-control-allow-methods', policy.allowMethods)
  if (policy.allowHeaders !== undefined) headers.push('access-control-allow-headers', policy.allowHeaders)
  if (policy.maxAge !== undefined) headers.push('access-control-max-age', policy.maxAge)
  return headers
}
