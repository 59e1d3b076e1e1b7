// The terminal filter: for the selected route, answers directly, redirects, or forwards to a cluster.

import { redirectLocation } from '../../route/redirect.ts'
import { type ForwardAction, pickDestination, rewritePath } from '../../route/route.ts'
import { isUpgradeRequest, UpgradeTunnel } from '../../tcp/upgrade-tunnel.ts'
import { sendMirrors } from '../../upstream/mirror-request.ts'
import { UpstreamRequest } from '../../upstream/upstream-request.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import { grpcTimeoutMs, isGrpcRequest } from '../grpc.ts'
import type { RequestContext } from '../request-context.ts'
import { sendLocalReply, sendResponse } from '../respond.ts'
import { buildUpstreamHeaders } from '../upstream-headers.ts'
import { selectRoute } from './route-select.ts'

export class RouterFilter implements HttpFilter {
  readonly name = 'router'

  /** As Envoy's router: the cookie a consistent-hash policy generated goes on the upstream's response. */
  onResponseHeaders(ctx: RequestContext, _status: number, headers: string[]): void {
    if (ctx.hashCookie !== undefined && ctx.responseCodeDetails === 'via_upstream') {
      headers.push('set-cookie', ctx.hashCookie)
    }
  }

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    // The route-select filter normally chose the route already; a chain without it selects here.
    const route = ctx.route ?? (selectRoute(ctx) ? ctx.route : undefined)
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
  const cluster = ctx.listener.clusters.forModel(ctx.model, destination.clusterName)
  if (cluster === undefined) {
    sendLocalReply(ctx, 'clusterNotFound')
    return
  }
  const endpoint = cluster.pick(ctx)
  if (endpoint === undefined) {
    sendLocalReply(ctx, 'noHealthyUpstream')
    return
  }
  if (!cluster.admits(endpoint)) {
    sendLocalReply(ctx, 'overflow')
    return
  }
  const url = ctx.url
  const path = rewritePath(action, url)
  const authority = action.authorityRewrite ?? ctx.authority
  const headers = buildUpstreamHeaders(ctx, authority, path === url ? undefined : ctx.path)
  if (isUpgradeRequest(ctx.req)) {
    new UpgradeTunnel(ctx, endpoint, cluster).start({ path, headers })
    return
  }
  const hasBody = hasRequestBody(ctx)
  const timeoutMs = requestTimeoutMs(ctx)
  const mirrors = ctx.route?.mirrors
  // A request with a body is mirrored by UpstreamRequest once the body is read (small bodies only).
  if (mirrors !== undefined && mirrors.length > 0 && !hasBody) {
    sendMirrors(ctx, mirrors, ctx.method, path, headers, timeoutMs)
  }
  new UpstreamRequest(ctx, endpoint, cluster).start({
    method: ctx.method,
    path,
    headers,
    hasBody,
    timeoutMs,
    retry: ctx.route?.retryPolicy,
    mirrors: hasBody ? mirrors : undefined,
  })
}

/**
 * The route timeout; a gRPC call's `grpc-timeout` is its deadline instead, capped by the route timeout
 * when one is set. Istio sets Envoy's max_grpc_timeout to the VirtualService timeout, or 0 (no cap)
 * when there is none; a `grpc-timeout` of 0 means no deadline, as in Envoy.
 */
function requestTimeoutMs(ctx: RequestContext): number {
  const routeTimeout = ctx.route?.timeoutMs ?? 0
  if (!isGrpcRequest(ctx)) return routeTimeout
  const deadline = grpcTimeoutMs(ctx.rawHeader('grpc-timeout'))
  if (deadline === undefined || deadline === 0) return routeTimeout
  return routeTimeout > 0 ? Math.min(deadline, routeTimeout) : deadline
}

function hasRequestBody(ctx: RequestContext): boolean {
  // HTTP/2 has no chunked encoding: a stream that did not end with its headers carries a body.
  if (ctx.http2) return !ctx.req.complete
  if (ctx.rawHeader('transfer-encoding') !== undefined) return true
  const length = ctx.rawHeader('content-length')
  return length !== undefined && length !== '0'
}
