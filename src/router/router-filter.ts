// The terminal filter: for the selected route, answers directly, redirects, or forwards to a cluster.

import type { FilterStatus, HttpFilter } from '../http/filter.ts'
import { formatGrpcTimeout, grpcTimeoutMs, isGrpcRequest } from '../http/grpc.ts'
import type { RequestContext } from '../http/request-context.ts'
import { sendLocalReply, sendResponse } from '../http/respond.ts'
import { selectRoute } from '../http/route-selection.ts'
import { StreamDeadline, streamDeadlineMs } from '../http/stream-deadline.ts'
import { redirectLocation } from '../route/redirect.ts'
import { type ForwardAction, type MaxStreamDuration, pickDestination, rewritePath } from '../route/route.ts'
import type { ClusterManager } from '../upstream/cluster-manager.ts'
import type { Mirroring } from './mirror-request.ts'
import { UpgradeTunnel } from './upgrade-tunnel.ts'
import { buildUpstreamHeaders } from './upstream-headers.ts'
import { UpstreamRequest, withAttemptCount } from './upstream-request.ts'

/** The last filter of every chain; the runtime makes it with the proxy's clusters and mirroring. */
export class RouterFilter implements HttpFilter {
  readonly name = 'router'
  readonly #clusters: ClusterManager
  readonly #mirroring: Mirroring

  constructor(clusters: ClusterManager, mirroring: Mirroring) {
    this.#clusters = clusters
    this.#mirroring = mirroring
  }

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
      forward(ctx, action, this.#clusters, this.#mirroring)
    }
    return 'stop'
  }
}

function forward(
  ctx: RequestContext,
  action: ForwardAction,
  clusters: ClusterManager,
  mirroring: Mirroring,
): void {
  const destination = pickDestination(action)
  ctx.destination = destination
  ctx.clusterName = destination.clusterName
  const cluster = clusters.forModel(ctx.model, destination.clusterName)
  if (cluster === undefined) {
    sendLocalReply(ctx, 'clusterNotFound')
    return
  }
  const endpoint = cluster.pick(ctx)
  // Envoy charges these answers as the cluster's 503s (router.cc sendNoHealthyUpstreamResponse and
  // chargeUpstreamAbort for a pool overflow), besides upstream_cx_none_healthy and the breaker's overflow.
  if (endpoint === undefined) {
    cluster.stats.noneHealthy()
    cluster.stats.chargeCode(503)
    sendLocalReply(ctx, 'noHealthyUpstream')
    return
  }
  if (!cluster.admits(endpoint)) {
    cluster.stats.chargeCode(503)
    sendLocalReply(ctx, 'overflow')
    return
  }
  const url = ctx.url
  const path = rewritePath(action, url)
  const authority = action.authorityRewrite ?? ctx.authority
  const headers = buildUpstreamHeaders(ctx, authority, path === url ? undefined : ctx.path)
  // Istio sets include_request_attempt_count on every outbound virtual host, none inbound (pilot
  // httproute.go, ProxyHeaders.IncludeRequestAttemptCount): an inbound request keeps the client's value.
  const includeAttemptCount = ctx.listenerModel.direction === 'outbound'
  if (ctx.req.upgrade === true) {
    new UpgradeTunnel(ctx, endpoint, cluster).start({
      path,
      headers: includeAttemptCount ? withAttemptCount(headers, 1) : headers,
    })
    return
  }
  const maxStreamDuration = ctx.route?.maxStreamDuration
  if (maxStreamDuration !== undefined) {
    // Most requests get no deadline (Istio's inbound routes: duration 0, and no grpc-timeout sent): no call.
    const grpcTimeout =
      maxStreamDuration.grpcTimeoutHeaderMaxMs === undefined ? undefined : ctx.rawHeader('grpc-timeout')
    if (grpcTimeout !== undefined || maxStreamDuration.maxStreamDurationMs > 0)
      armStreamDeadline(ctx, maxStreamDuration, grpcTimeout, headers)
  }
  const hasBody = hasRequestBody(ctx)
  const timeoutMs = requestTimeoutMs(ctx)
  const mirrors = ctx.route?.mirrors
  // A request with a body is mirrored by UpstreamRequest once the body is read (small bodies only).
  if (mirrors !== undefined && mirrors.length > 0 && !hasBody) {
    mirroring.send(ctx, mirrors, ctx.method, path, headers, timeoutMs)
  }
  new UpstreamRequest(ctx, endpoint, cluster).start({
    method: ctx.method,
    path,
    headers,
    hasBody,
    timeoutMs,
    retry: ctx.route?.retryPolicy,
    mirrors: hasBody ? mirrors : undefined,
    mirroring,
    includeAttemptCount,
  })
}

/**
 * The route's max_stream_duration (inbound routes): the deadline runs from the request headers and the
 * connection manager answers it (StreamDeadline). Envoy rewrites a gRPC request's grpc-timeout to the
 * deadline it keeps, in its own format, before the time already spent is taken off (refreshDurationTimeout).
 */
function armStreamDeadline(
  ctx: RequestContext,
  duration: MaxStreamDuration,
  grpcTimeout: string | undefined,
  headers: string[],
): void {
  const deadlineMs = streamDeadlineMs(duration, grpcTimeout)
  if (deadlineMs === undefined) return
  new StreamDeadline(ctx, deadlineMs)
  if (!isGrpcRequest(ctx)) return
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] === 'grpc-timeout') headers[i + 1] = formatGrpcTimeout(deadlineMs)
  }
}

/**
 * The router's timeout, started once the request has been read. Outbound routes carry Envoy's
 * max_grpc_timeout, which current Istio still sets to the VirtualService timeout, or 0 (no cap) without
 * one (route.go setTimeout: "use deprecated value for now as the replacement MaxStreamDuration has some
 * regressions"): a gRPC call's `grpc-timeout` is its deadline, capped by the route timeout when one is
 * set, and 0 means none (router.cc FilterUtility::finalTimeout). Inbound routes have max_stream_duration
 * instead: the router keeps only the route timeout there (0).
 */
function requestTimeoutMs(ctx: RequestContext): number {
  const routeTimeout = ctx.route?.timeoutMs ?? 0
  // The route's own field first: an inbound request does not pay for the content-type lookup.
  if (ctx.route?.maxStreamDuration !== undefined || !isGrpcRequest(ctx)) return routeTimeout
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
