// A compiled route: one match block of an HTTPRoute, and what to do with a request it matches.

import type { RE2JS } from '../protocol/re2.ts'
import type { CorsPolicy } from './cors-policy.ts'
import type { FaultPolicy } from './fault-policy.ts'
import type { HeaderEdits } from './header-edits.ts'
import type { MirrorPolicy } from './mirror-policy.ts'
import type { RequestFacts } from './request-facts.ts'
import type { RequestMatch } from './request-match.ts'
import type { RetryPolicy } from './retry-policy.ts'

export interface WeightedDestination {
  readonly clusterName: string
  readonly weight: number
  readonly requestHeaders: HeaderEdits
  readonly responseHeaders: HeaderEdits
}

export interface PathRewrite {
  /** Replace this leading part of the path (the matched prefix; `/` when the route has no uri match)… */
  readonly prefix?: string
  /** …with this, or replace the whole path with it when `prefix` is undefined (exact/regex matches). */
  readonly replacement: string
}

export interface RegexRewrite {
  readonly pattern: RE2JS
  /** Replacement with `$1`-style group references. */
  readonly replacement: string
}

export interface ForwardAction {
  readonly kind: 'forward'
  readonly destinations: readonly WeightedDestination[]
  readonly totalWeight: number
  readonly pathRewrite?: PathRewrite
  readonly regexRewrite?: RegexRewrite
  readonly authorityRewrite?: string
}

export interface RedirectAction {
  readonly kind: 'redirect'
  readonly uri?: string
  readonly authority?: string
  readonly port?: number
  readonly derivePort?: 'FROM_PROTOCOL_DEFAULT' | 'FROM_REQUEST_PORT'
  readonly scheme?: string
  readonly status: number
}

export interface DirectResponseAction {
  readonly kind: 'direct'
  readonly status: number
  readonly body?: Buffer
}

export type RouteAction = ForwardAction | RedirectAction | DirectResponseAction

/**
 * Envoy's RouteAction.max_stream_duration: a deadline the connection manager keeps per stream, counted
 * from the request headers (ConnectionManagerImpl::ActiveStream::refreshDurationTimeout).
 */
export interface MaxStreamDuration {
  /** The deadline of a request without a usable grpc-timeout; 0: none. */
  readonly maxStreamDurationMs: number
  /**
   * Set: a request's `grpc-timeout` is its deadline instead, capped by this when it is not 0. Undefined:
   * grpc-timeout is not read here.
   */
  readonly grpcTimeoutHeaderMaxMs: number | undefined
}

export interface RouteSpec {
  readonly name: string
  /** The live view's name of the route (`<VirtualService namespace/name>/<http[] name or index>`); default `name`. */
  readonly statName?: string
  readonly match?: RequestMatch
  readonly action: RouteAction
  readonly requestHeaders: HeaderEdits
  readonly responseHeaders: HeaderEdits
  /** Route timeout in ms; 0 disables it (Istio's default). */
  readonly timeoutMs: number
  /** Fault injection for requests on this route (the fault filter reads it). */
  readonly fault?: FaultPolicy
  /** Retries for forwarded requests; undefined when retrying is off (`retries: {attempts: 0}`). */
  readonly retryPolicy?: RetryPolicy
  /** Clusters that get a copy of each (bodiless) request, responses discarded. */
  readonly mirrors?: readonly MirrorPolicy[]
  /** Cross-origin policy (the CORS filter reads it). */
  readonly cors?: CorsPolicy
  /**
   * Set on inbound routes, as Istio's BuildDefaultHTTPInboundRoute sets it (both values 0). Outbound routes
   * carry Envoy's max_grpc_timeout instead, which Istio sets to `timeoutMs` (route.go setTimeout): there
   * the route timeout reads grpc-timeout, counted once the request has been read.
   */
  readonly maxStreamDuration?: MaxStreamDuration
  /** Where it came from in its VirtualService, for `outrigger explain`: the `http[]` index (absent: no VirtualService)… */
  readonly httpIndex?: number
  /** …and the `match[]` index within it (absent: an entry without `match`). */
  readonly matchIndex?: number
}

export class Route implements RouteSpec {
  readonly name: string
  readonly statName: string
  readonly match?: RequestMatch
  readonly action: RouteAction
  readonly requestHeaders: HeaderEdits
  readonly responseHeaders: HeaderEdits
  readonly timeoutMs: number
  readonly fault: FaultPolicy | undefined
  readonly retryPolicy: RetryPolicy | undefined
  readonly mirrors: readonly MirrorPolicy[]
  readonly cors: CorsPolicy | undefined
  readonly maxStreamDuration: MaxStreamDuration | undefined
  /** The VirtualService `http[]` index it was compiled from; -1 when no VirtualService made it. */
  readonly httpIndex: number
  /** The `match[]` index within that entry; -1 when the entry has no `match`. */
  readonly matchIndex: number

  constructor(spec: RouteSpec) {
    this.name = spec.name
    this.statName = spec.statName ?? spec.name
    this.match = spec.match
    this.action = spec.action
    this.requestHeaders = spec.requestHeaders
    this.responseHeaders = spec.responseHeaders
    this.timeoutMs = spec.timeoutMs
    this.fault = spec.fault
    this.retryPolicy = spec.retryPolicy
    this.mirrors = spec.mirrors ?? []
    this.cors = spec.cors
    this.maxStreamDuration = spec.maxStreamDuration
    this.httpIndex = spec.httpIndex ?? -1
    this.matchIndex = spec.matchIndex ?? -1
  }

  matches(req: RequestFacts): boolean {
    return this.match === undefined || this.match.matches(req)
  }
}

/** Picks a destination by weight (uniformly random, as Envoy's weighted clusters). */
export function pickDestination(action: ForwardAction): WeightedDestination {
  const list = action.destinations
  if (list.length === 1) return list[0]
  let ticket = Math.random() * action.totalWeight
  for (const d of list) {
    ticket -= d.weight
    if (ticket < 0) return d
  }
  return list[list.length - 1]
}

/** The upstream path after `rewrite.uri` / `rewrite.uriRegexRewrite`; the query string is kept. */
export function rewritePath(action: ForwardAction, pathAndQuery: string): string {
  if (action.pathRewrite === undefined && action.regexRewrite === undefined) return pathAndQuery
  const q = pathAndQuery.indexOf('?')
  let path = q === -1 ? pathAndQuery : pathAndQuery.slice(0, q)
  const query = q === -1 ? '' : pathAndQuery.slice(q)
  const rw = action.pathRewrite
  if (rw !== undefined) {
    path = rw.prefix === undefined ? rw.replacement : rw.replacement + path.slice(rw.prefix.length)
  }
  const rx = action.regexRewrite
  if (rx !== undefined) path = rx.pattern.matcher(path).replaceAll(rx.replacement)
  return path + query
}
