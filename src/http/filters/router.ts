// The terminal filter: picks the route, then answers directly, redirects, or forwards to a cluster.

import { redirectLocation } from '../../route/redirect.ts'
import { type ForwardAction, pickDestination, rewritePath } from '../../route/route.ts'
import { UpstreamRequest } from '../../upstream/upstream-request.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import type { RequestContext } from '../request-context.ts'
import { sendLocalReply, sendResponse } from '../respond.ts'
import { buildUpstreamHeaders } from '../upstream-headers.ts'

export class RouterFilter implements HttpFilter {
  readonly name = 'router'

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const vh = ctx.listener.model.routeTable.lookup(ctx.authority)
    if (vh === undefined) {
      sendLocalReply(ctx, 'noRoute')
      return 'stop'
    }
    ctx.virtualHost = vh
    for (const route of vh.routes) {
      if (route.matches(ctx)) {
        ctx.route = route
        break
      }
    }
    const route = ctx.route
    if (route === undefined) {
      sendLocalReply(ctx, 'noRoute')
      return 'stop'
    }
    const action = route.action
    if (action.kind === 'direct') {
      ctx.responseCodeDetails = 'direct_response'
      sendResponse(ctx, action.status, action.body)
    } else if (action.kind === 'redirect') {
      ctx.responseCodeDetails = 'direct_response'
      sendResponse(ctx, action.status, undefined, ['location', redirectLocation(action, ctx)])
    } else {
      forward(ctx, action)
    }
    return 'stop'
  }
}

function forward(ctx: RequestContext, action: ForwardAction): void {
  const destination = pickDestination(action)
  ctx.destination = destination
  ctx.clusterName = destination.clusterName
  const cluster = ctx.listener.clusters.get(destination.clusterName)
  if (cluster === undefined) {
    sendLocalReply(ctx, 'clusterNotFound')
    return
  }
  const endpoint = cluster.pick()
  if (endpoint === undefined) {
    sendLocalReply(ctx, 'noHealthyUpstream')
    return
  }
  const url = ctx.url
  const path = rewritePath(action, url)
  const authority = action.authorityRewrite ?? ctx.authority
  const headers = buildUpstreamHeaders(ctx, authority, path === url ? undefined : ctx.path)
  new UpstreamRequest(ctx, endpoint).start({
    method: ctx.method,
    path,
    headers,
    hasBody: hasRequestBody(ctx),
    timeoutMs: ctx.route?.timeoutMs ?? 0,
  })
}

function hasRequestBody(ctx: RequestContext): boolean {
  if (ctx.rawHeader('transfer-encoding') !== undefined) return true
  const length = ctx.rawHeader('content-length')
  return length !== undefined && length !== '0'
}
