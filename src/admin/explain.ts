// `outrigger explain`: what the proxy does with one request (listener, virtual host, route and why, action, clusters, policies, authorization), as stable JSON.

import type { AuthzExplanation } from '../authz/authz-policies.ts'
import type { ClusterModel, ListenerModel, Model, TrafficDirection } from '../config/model.ts'
import type { HeaderEditsDescription } from '../route/header-edits.ts'
import { redirectLocation } from '../route/redirect.ts'
import { retryOnNames } from '../route/retry-policy.ts'
import type { Route, RouteAction } from '../route/route.ts'
import { rewritePath } from '../route/route.ts'
import {
  describeMiss,
  explainRouting,
  type RouteVerdict,
  type RoutingExplanation,
} from '../route/route-explain.ts'
import type { VirtualHostChoice } from '../route/route-table.ts'
import { checkAuthz } from './authz-check.ts'
import { type ExplainQuery, headerMap } from './explain-query.ts'

/** An endpoint as the running proxy sees it (admin /explain); offline there is none. */
export interface LiveEndpoint {
  /** `address:port`. */
  readonly address: string
  readonly ejected: boolean
  readonly activeRequests: number
  readonly locality: string
  readonly weight: number
  readonly priority: number
}

/** The running clusters' endpoints by cluster name; undefined: the cluster is not built on this worker. */
export type LiveEndpoints = (clusterName: string) => readonly LiveEndpoint[] | undefined

export interface ExplainedListener {
  /** False: no listener takes the request; `note` says what happens instead. */
  readonly found: boolean
  readonly name: string | null
  readonly direction: TrafficDirection
  readonly address: string | null
  readonly port: number
  readonly protocol: string | null
  /** http | detect | tcp | tls | tls-terminate (config/model.ts ListenerServe). */
  readonly serve: string | null
  /** The capture listener (virtualOutbound / virtualInbound) that handed the connection over, under capture. */
  readonly capturedBy: string | null
  readonly note: string
}

export interface ExplainedVirtualHost {
  readonly name: string
  /** `namespace/name` of the VirtualService whose routes it holds; null: the service's default route. */
  readonly virtualService: string | null
  /** exact | wildcard | catch-all (route-table.ts VirtualHostChoice). */
  readonly rule: string
  readonly domain: string
  readonly why: string
}

export interface ExplainedRoute {
  /** Position in the virtual host's compiled routes. */
  readonly index: number
  readonly name: string
  /** The VirtualService `http[]` index; null when no VirtualService made the route. */
  readonly http: number | null
  /** The `match[]` index; null when the entry has no match. */
  readonly match: number | null
  readonly matched: boolean
  /** The first condition that failed (`header end-user exact "jason" ≠ absent`); null when it matched. */
  readonly reason: string | null
  /** uri | method | scheme | authority | port | header | withoutHeader | queryParam; null when it matched. */
  readonly condition: string | null
}

/** A VirtualService `http[]` entry or match block that is not in the compiled table. */
export interface ExplainedLeftOut {
  readonly http: number
  /** null: every match block of the entry. */
  readonly match: number | null
  readonly reason: string
}

export interface ExplainedDestination {
  readonly cluster: string
  readonly host: string | null
  readonly subset: string | null
  readonly port: number | null
  readonly weight: number
  /** The weight's share of the total, in percent. */
  readonly percent: number
  readonly requestHeaders: HeaderEditsDescription
  readonly responseHeaders: HeaderEditsDescription
}

export type ExplainedAction =
  | {
      readonly kind: 'forward'
      readonly destinations: readonly ExplainedDestination[]
      /** The path sent upstream after rewrite.uri / uriRegexRewrite (the request's own when unchanged). */
      readonly upstreamPath: string
      readonly rewrite: {
        readonly uri: string | null
        readonly uriRegex: { readonly match: string; readonly rewrite: string } | null
        readonly authority: string | null
      }
    }
  | { readonly kind: 'redirect'; readonly status: number; readonly location: string }
  | { readonly kind: 'direct'; readonly status: number; readonly body: string | null }
  | {
      readonly kind: 'tcp'
      readonly routes: readonly { readonly name: string; readonly clusters: readonly string[] }[]
    }

export interface ExplainedEndpoint {
  readonly address: string
  /** healthy | ejected (outlier detection) | unknown offline */
  readonly health: 'healthy' | 'ejected' | 'unknown offline'
  /** null offline. */
  readonly activeRequests: number | null
  readonly locality: string
  readonly weight: number
  readonly priority: number
}

export interface ExplainedCluster {
  readonly name: string
  /** False: the model has no such cluster (the router answers 503 NC: cluster not found). */
  readonly defined: boolean
  readonly host: string | null
  readonly port: number | null
  readonly subset: string | null
  /** ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH (key), MAGLEV (key). */
  readonly loadBalancer: string | null
  /** STRICT_DNS | LOGICAL_DNS | ORIGINAL_DST, or STATIC for IP endpoints. */
  readonly discovery: string | null
  readonly connectTimeoutMs: number | null
  readonly outlierDetection: {
    readonly consecutive5xxErrors: number
    readonly consecutiveGatewayErrors: number
    readonly intervalMs: number
    readonly baseEjectionTimeMs: number
    readonly maxEjectionPercent: number
  } | null
  readonly endpoints: readonly ExplainedEndpoint[]
  /** How the endpoint health was read: `live` (the running clusters) or why not. */
  readonly health: string
}

export interface ExplainedPolicies {
  /** Route timeout; 0: none (Istio's default). */
  readonly timeoutMs: number
  readonly retry: {
    readonly attempts: number
    readonly perTryTimeoutMs: number
    readonly retryOn: readonly string[]
    readonly retriableStatusCodes: readonly number[]
  } | null
  readonly fault: {
    readonly delay: { readonly ms: number; readonly percent: number } | null
    readonly abort: {
      readonly httpStatus: number | null
      readonly grpcStatus: number | null
      readonly percent: number
    } | null
  } | null
  readonly mirrors: readonly { readonly cluster: string; readonly percent: number }[]
  readonly requestHeaders: HeaderEditsDescription
  readonly responseHeaders: HeaderEditsDescription
  readonly cors: boolean
}

export interface ExplainedAuthorization {
  /** The port's PeerAuthentication mode and the policy that set it; null when none applies to the listener. */
  readonly mtls: { readonly mode: string; readonly policy: string } | null
  /** False: no AuthorizationPolicy applies to this workload (every request is allowed). */
  readonly policies: boolean
  readonly decision: AuthzExplanation
}

/** What admin /explain answers with `format=json` and `outrigger explain -o json` prints; fields are only ever added. */
export interface Explanation {
  /** online: the running proxy's model and clusters; offline: a bootstrap or resource files compiled here. */
  readonly mode: 'online' | 'offline'
  readonly request: {
    readonly method: string
    readonly authority: string
    readonly path: string
    readonly scheme: string
    readonly headers: Readonly<Record<string, string>>
    readonly sourcePrincipal: string | null
    readonly direction: TrafficDirection
    readonly port: number
  }
  readonly listener: ExplainedListener
  readonly virtualHost: ExplainedVirtualHost | null
  /** The routes tried, in order, up to the one that matched. */
  readonly routes: readonly ExplainedRoute[]
  /** Match blocks the compiler left out of this table (sourceLabels, sourceNamespace, gateways or port elsewhere). */
  readonly leftOut: readonly ExplainedLeftOut[]
  /** One line: what the proxy does (forwards, redirects, answers 404 NR, passes through…). */
  readonly outcome: string
  readonly action: ExplainedAction | null
  readonly clusters: readonly ExplainedCluster[]
  readonly policies: ExplainedPolicies | null
  /** Inbound only. */
  readonly authorization: ExplainedAuthorization | null
}

/** The listener the request reaches, and what the proxy does when none does. */
interface ListenerChoice {
  readonly listener: ListenerModel | undefined
  readonly port: number
  readonly capturedBy: ListenerModel | undefined
  readonly note: string
}

function authorityPort(authority: string): number | undefined {
  const m = /:(\d+)$/.exec(authority)
  return m === null || authority.endsWith(']') ? undefined : Number(m[1])
}

/**
 * Standalone (capture: none): the listener bound on `--port` (default: the outbound listener of the
 * authority's port, or the only one; the first inbound one). Under capture: the `bindToPort: false`
 * listener of the original destination port that the capture listener hands the connection to
 * (capture-targets.ts: the 0.0.0.0 listener of an HTTP port), else the capture listener's own chain.
 */
function chooseListener(model: Model, query: ExplainQuery): ListenerChoice {
  const direction = query.direction
  const capture = model.listeners.find((l) => l.capture !== undefined && l.direction === direction)
  const own = model.listeners.filter((l) => l.capture === undefined && l.direction === direction)
  if (capture === undefined) {
    const bound = own.filter((l) => l.bindToPort !== false)
    if (query.port !== undefined) {
      const listener = bound.find((l) => l.port === query.port)
      return {
        listener,
        port: query.port,
        capturedBy: undefined,
        note:
          listener !== undefined
            ? `${direction} listener on port ${query.port}`
            : `no ${direction} listener on port ${query.port}: the connection is refused`,
      }
    }
    const byAuthority = direction === 'outbound' ? authorityPort(query.authority) : undefined
    const listener = bound.find((l) => l.port === byAuthority) ?? bound[0]
    const note =
      listener === undefined
        ? `no ${direction} listener (no Sidecar ${direction === 'outbound' ? 'egress' : 'ingress'} port): nothing takes the request`
        : bound.length > 1 && listener.port !== byAuthority
          ? `${bound.length} ${direction} listeners: took the first, port ${listener.port} (choose with --port)`
          : `${direction} listener on port ${listener.port}`
    return { listener, port: listener?.port ?? 0, capturedBy: undefined, note }
  }
  const port =
    query.port ??
    (direction === 'outbound'
      ? (authorityPort(query.authority) ?? (query.scheme === 'https' ? 443 : 80))
      : (own.find((l) => l.bindToPort === false)?.port ?? 0))
  if (capture.capture?.ownPorts.includes(port))
    return {
      listener: undefined,
      port,
      capturedBy: capture,
      note: `port ${port} is one of the proxy's own ports: ${capture.name} closes the connection (no loop)`,
    }
  const candidates = own.filter((l) => l.bindToPort === false && l.port === port)
  const listener =
    candidates.find((l) => l.address === '0.0.0.0' || l.address === '::' || direction === 'inbound') ??
    candidates[0]
  if (listener !== undefined)
    return {
      listener,
      port,
      capturedBy: capture,
      note: `${capture.name} (port ${capture.port}) hands original destination port ${port} to ${listener.name}`,
    }
  return {
    listener: capture,
    port,
    capturedBy: capture,
    note: `no listener for original destination port ${port}: ${capture.name} serves it with its own chain`,
  }
}

function listenerJson(choice: ListenerChoice, direction: TrafficDirection): ExplainedListener {
  const l = choice.listener
  return {
    found: l !== undefined,
    name: l?.name ?? null,
    direction,
    address: l?.address ?? null,
    port: choice.port,
    protocol: l === undefined ? null : l.protocol === '' ? 'auto' : l.protocol,
    serve: l?.serve ?? null,
    capturedBy: choice.capturedBy?.name ?? null,
    note: choice.note,
  }
}

/** Why the domain picked the virtual host: `exact`, a short name, a service address, a wildcard, or `*`. */
function whyDomain(choice: VirtualHostChoice): string {
  const vh = choice.virtualHost
  if (choice.rule === 'catch-all')
    return `domain '*': ${vh.name} takes any authority that no other domain matches`
  if (choice.rule === 'wildcard') return `wildcard domain ${choice.domain} (the longest suffix that matched)`
  const fqdn = vh.name.slice(0, vh.name.lastIndexOf(':'))
  const host = choice.domain.replace(/:\d+$/, '')
  const port = choice.domain === host ? ` (no port: the port ${vh.port} the Host may leave out)` : ''
  if (host === fqdn.toLowerCase()) return `exact domain ${choice.domain}: the fully qualified name${port}`
  if (/^[\d.]+$|^\[/.test(host)) return `exact domain ${choice.domain}: a service address${port}`
  return `exact domain ${choice.domain}: a short name of ${fqdn} in the proxy's namespace${port}`
}

function routeJson(verdict: RouteVerdict): ExplainedRoute {
  const r = verdict.route
  return {
    index: verdict.index,
    name: r.name,
    http: r.httpIndex < 0 ? null : r.httpIndex,
    match: r.httpIndex < 0 || r.matchIndex < 0 ? null : r.matchIndex,
    matched: verdict.miss === undefined,
    reason: verdict.miss === undefined ? null : describeMiss(verdict.miss),
    condition: verdict.miss?.condition ?? null,
  }
}

/** Match blocks missing between the compiled routes' `http[i] match[j]` indices, up to `upTo`. */
function leftOutBlocks(routes: readonly Route[], upTo: number): ExplainedLeftOut[] {
  const out: ExplainedLeftOut[] = []
  const reason =
    'left out when compiled: its sourceLabels, sourceNamespace, gateways or port select another proxy or port'
  let http = -1
  let match = -1
  for (let i = 0; i <= upTo && i < routes.length; i++) {
    const r = routes[i]
    if (r.httpIndex < 0) continue
    if (r.httpIndex === http) {
      for (let j = match + 1; j < r.matchIndex; j++) out.push({ http, match: j, reason })
    } else {
      for (let k = http + 1; k < r.httpIndex; k++) out.push({ http: k, match: null, reason })
      for (let j = 0; j < r.matchIndex; j++) out.push({ http: r.httpIndex, match: j, reason })
    }
    http = r.httpIndex
    match = r.matchIndex
  }
  return out
}

function percentOf(weight: number, total: number): number {
  return total === 0 ? 0 : Math.round((weight / total) * 10000) / 100
}

function actionJson(action: RouteAction, query: ExplainQuery, port: number, model: Model): ExplainedAction {
  if (action.kind === 'redirect')
    return {
      kind: 'redirect',
      status: action.status,
      location: redirectLocation(action, {
        scheme: query.scheme,
        authority: query.authority,
        url: query.path,
        port,
      }),
    }
  if (action.kind === 'direct')
    return { kind: 'direct', status: action.status, body: action.body?.toString('utf8') ?? null }
  return {
    kind: 'forward',
    destinations: action.destinations.map((d) => {
      const cluster = model.clusters.get(d.clusterName)
      return {
        cluster: d.clusterName,
        host: cluster?.host || null,
        subset: cluster === undefined ? null : cluster.subset,
        port: cluster?.port || null,
        weight: d.weight,
        percent: percentOf(d.weight, action.totalWeight),
        requestHeaders: d.requestHeaders.describe(),
        responseHeaders: d.responseHeaders.describe(),
      }
    }),
    upstreamPath: rewritePath(action, query.path),
    rewrite: {
      uri: action.pathRewrite?.replacement ?? null,
      uriRegex:
        action.regexRewrite === undefined
          ? null
          : { match: action.regexRewrite.pattern.pattern(), rewrite: action.regexRewrite.replacement },
      authority: action.authorityRewrite ?? null,
    },
  }
}

function loadBalancerText(model: ClusterModel): string {
  // Envoy's CLUSTER_PROVIDED: the host is the connection's original destination, no balancing.
  if (model.discovery === 'ORIGINAL_DST') return 'CLUSTER_PROVIDED (original destination)'
  const lb = model.policy.loadBalancer
  if (lb.kind !== 'RING_HASH' && lb.kind !== 'MAGLEV') return lb.kind
  const key = lb.hashKey
  const by =
    key.kind === 'header' || key.kind === 'cookie' || key.kind === 'queryParameter'
      ? `${key.kind} ${key.name}`
      : key.kind === 'sourceIp'
        ? 'source IP'
        : 'no key: random'
  return `${lb.kind} (hash on ${by})`
}

function clusterJson(name: string, model: Model, live: LiveEndpoints | undefined): ExplainedCluster {
  const c = model.clusters.get(name)
  if (c === undefined)
    return {
      name,
      defined: false,
      host: null,
      port: null,
      subset: null,
      loadBalancer: null,
      discovery: null,
      connectTimeoutMs: null,
      outlierDetection: null,
      endpoints: [],
      health: 'no such cluster: the router answers 503 NC (cluster_not_found)',
    }
  const od = c.policy.outlierDetection
  const running = live?.(name)
  const endpoints: ExplainedEndpoint[] =
    running !== undefined
      ? running.map((e) => ({
          address: e.address,
          health: e.ejected ? 'ejected' : 'healthy',
          activeRequests: e.activeRequests,
          locality: e.locality,
          weight: e.weight,
          priority: e.priority,
        }))
      : c.endpoints.map((e) => ({
          address: `${e.address}:${e.port}`,
          health: live === undefined ? 'unknown offline' : 'healthy',
          activeRequests: live === undefined ? null : 0,
          locality: e.locality,
          weight: e.weight,
          priority: e.priority,
        }))
  const health =
    live === undefined
      ? 'not known offline'
      : running !== undefined
        ? 'live'
        : 'live: the running proxy has not built this cluster'
  return {
    name,
    defined: true,
    host: c.host || null,
    port: c.port || null,
    subset: c.subset,
    loadBalancer: loadBalancerText(c),
    discovery: c.discovery ?? 'STATIC',
    connectTimeoutMs: c.connectTimeoutMs,
    outlierDetection:
      od === undefined
        ? null
        : {
            consecutive5xxErrors: od.consecutive5xxErrors,
            consecutiveGatewayErrors: od.consecutiveGatewayErrors,
            intervalMs: od.intervalMs,
            baseEjectionTimeMs: od.baseEjectionTimeMs,
            maxEjectionPercent: od.maxEjectionPercent,
          },
    endpoints,
    health,
  }
}

function policiesJson(route: Route): ExplainedPolicies {
  const retry = route.retryPolicy
  const fault = route.fault
  return {
    timeoutMs: route.timeoutMs,
    retry:
      retry === undefined
        ? null
        : {
            attempts: retry.numRetries,
            perTryTimeoutMs: retry.perTryTimeoutMs,
            retryOn: retryOnNames(retry.on),
            retriableStatusCodes: [...retry.statusCodes],
          },
    fault:
      fault === undefined
        ? null
        : {
            delay: fault.delayMs === 0 ? null : { ms: fault.delayMs, percent: fault.delayPercent },
            abort:
              fault.abort === undefined
                ? null
                : {
                    httpStatus: fault.abort.httpStatus ?? null,
                    grpcStatus: fault.abort.grpcStatus ?? null,
                    percent: fault.abort.percent,
                  },
          },
    mirrors: route.mirrors.map((m) => ({ cluster: m.clusterName, percent: m.percent })),
    requestHeaders: route.requestHeaders.describe(),
    responseHeaders: route.responseHeaders.describe(),
    cors: route.cors !== undefined,
  }
}

function authorizationJson(
  model: Model,
  listener: ListenerModel | undefined,
  query: ExplainQuery,
  port: number,
): ExplainedAuthorization {
  const authz = listener?.authz ?? model.authz
  return {
    mtls: listener?.mtls === undefined ? null : { mode: listener.mtls.mode, policy: listener.mtls.policy },
    policies: authz !== undefined,
    decision: checkAuthz(authz, {
      method: query.method,
      path: query.path,
      host: query.authority,
      port,
      principal: query.sourcePrincipal,
      headers: query.headers,
    }),
  }
}

function outcomeOf(
  choice: ListenerChoice,
  routing: RoutingExplanation | undefined,
  action: ExplainedAction | null,
): string {
  if (choice.listener === undefined) return choice.note
  if (routing === undefined) {
    if (action?.kind === 'tcp')
      return `port ${choice.port} is served as ${choice.listener.serve === 'tls' ? 'TLS passthrough' : 'opaque TCP'}: HTTP routing does not apply`
    return 'no HTTP routing on this listener'
  }
  if (routing.choice === undefined)
    return 'no virtual host for this authority: the router answers 404 NR (route_not_found)'
  if (routing.matched === undefined)
    return 'no route of the virtual host matches: the router answers 404 NR (route_not_found)'
  if (action?.kind === 'redirect') return `redirect: ${action.status} to ${action.location}`
  if (action?.kind === 'direct') return `direct response: ${action.status}`
  if (action?.kind === 'forward') {
    if (action.destinations.length === 0) return 'every destination has weight 0: the router answers 503'
    return action.destinations.length === 1
      ? `forward to ${action.destinations[0].cluster}`
      : `forward, split by weight over ${action.destinations.length} destinations`
  }
  return ''
}

/** Explains `query` on `model`; `live` gives the running clusters' endpoints (online), absent offline. */
export function explain(model: Model, query: ExplainQuery, live?: LiveEndpoints): Explanation {
  const choice = chooseListener(model, query)
  const listener = choice.listener
  const headers = headerMap(query)
  const http = listener !== undefined && listener.serve !== 'tcp' && listener.serve !== 'tls'
  const routing = http
    ? explainRouting(listener.routeTable, {
        method: query.method,
        path: query.path,
        scheme: query.scheme,
        authority: query.authority,
        headers,
      })
    : undefined
  const vhPort = routing?.choice?.virtualHost.port ?? choice.port
  let action: ExplainedAction | null = null
  let clusterNames: string[] = []
  if (routing?.matched !== undefined) {
    action = actionJson(routing.matched.action, query, vhPort, model)
    if (action.kind === 'forward') clusterNames = action.destinations.map((d) => d.cluster)
    for (const m of routing.matched.mirrors)
      if (!clusterNames.includes(m.clusterName)) clusterNames.push(m.clusterName)
  } else if (listener !== undefined && !http) {
    const routes = listener.serve === 'tls' ? listener.tcpRoutes.tlsRoutes : listener.tcpRoutes.tcpRoutes
    action = {
      kind: 'tcp',
      routes: routes.map((r) => ({ name: r.name, clusters: r.destinations.map((d) => d.clusterName) })),
    }
    clusterNames = [...new Set(routes.flatMap((r) => r.destinations.map((d) => d.clusterName)))]
  }
  const vh = routing?.choice
  const matchedIndex = routing?.verdicts.at(-1)?.index ?? -1
  return {
    mode: live === undefined ? 'offline' : 'online',
    request: {
      method: query.method,
      authority: query.authority,
      path: query.path,
      scheme: query.scheme,
      headers: Object.fromEntries(headers),
      sourcePrincipal: query.sourcePrincipal ?? null,
      direction: query.direction,
      port: choice.port,
    },
    listener: listenerJson(choice, query.direction),
    virtualHost:
      vh === undefined
        ? null
        : {
            name: vh.virtualHost.name,
            virtualService: vh.virtualHost.virtualService ?? null,
            rule: vh.rule,
            domain: vh.domain,
            why: whyDomain(vh),
          },
    routes: routing?.verdicts.map(routeJson) ?? [],
    leftOut: vh === undefined ? [] : leftOutBlocks(vh.virtualHost.routes, matchedIndex),
    outcome: outcomeOf(choice, routing, action),
    action,
    clusters: clusterNames.map((name) => clusterJson(name, model, live)),
    policies: routing?.matched === undefined ? null : policiesJson(routing.matched),
    authorization: query.direction === 'inbound' ? authorizationJson(model, listener, query, vhPort) : null,
  }
}
