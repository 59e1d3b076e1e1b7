// Compiles a VirtualService's `http[]` into the routes of one virtual host (one per match block, as Istio).

import { compileRe2 } from '../../protocol/re2.ts'
import type { CorsPolicy } from '../../route/cors-policy.ts'
import type { FaultPolicy } from '../../route/fault-policy.ts'
import { HeaderEdits } from '../../route/header-edits.ts'
import type { MirrorPolicy } from '../../route/mirror-policy.ts'
import { type HeaderCondition, type QueryCondition, RequestMatch } from '../../route/request-match.ts'
import {
  DEFAULT_BACKOFF_MS,
  defaultRetryPolicy,
  parseRetryOn,
  type RetryPolicy,
} from '../../route/retry-policy.ts'
import {
  type PathRewrite,
  type RegexRewrite,
  Route,
  type RouteAction,
  type WeightedDestination,
} from '../../route/route.ts'
import { compileStringMatch, type StringMatchSpec } from '../../route/string-match.ts'
import { parseDurationMs } from '../duration.ts'
import { flat } from '../flat-string.ts'
import { toFqdn } from '../hosts.ts'
import type { CorsPolicySpec } from '../istio/cors-policy.ts'
import { GRPC_STATUS_NAMES } from '../istio/grpc-status.ts'
import type { HttpFaultSpec } from '../istio/http-fault.ts'
import type { HttpRetrySpec } from '../istio/http-retry.ts'
import type { ClusterModel, NodeIdentity } from '../model.ts'
import type { VirtualServiceResource } from '../resource.ts'
import type { Service } from './service-registry.ts'

type HttpRouteSpec = NonNullable<VirtualServiceResource['spec']['http']>[number]
type MatchSpec = NonNullable<HttpRouteSpec['match']>[number]

export interface RouteCompileEnv {
  readonly node: NodeIdentity
  readonly services: ReadonlyMap<string, Service>
  /** The compiled clusters: a route names a cluster with the cluster's own name string, not a copy. */
  readonly clusters?: ReadonlyMap<string, ClusterModel>
}

export function outboundClusterName(port: number, subset: string, fqdn: string): string {
  return flat('outbound|', port, '|', subset, '|', fqdn)
}

/** The routes of `vs` for a virtual host on `servicePort`, in order; match blocks for other ports drop out. */
export function compileHttpRoutes(
  vs: VirtualServiceResource,
  servicePort: number,
  env: RouteCompileEnv,
): Route[] {
  const routes: Route[] = []
  const entries = vs.spec.http ?? []
  for (let httpIndex = 0; httpIndex < entries.length; httpIndex++) {
    const http = entries[httpIndex]
    const statName = routeStatName(vs, http, httpIndex)
    const matches = http.match ?? []
    if (matches.length === 0) {
      routes.push(compileRoute(vs, http, undefined, servicePort, env, statName, httpIndex, -1))
      continue
    }
    for (let matchIndex = 0; matchIndex < matches.length; matchIndex++) {
      const m = matches[matchIndex]
      if (!appliesToThisProxy(m, env.node)) continue
      if (m.port !== undefined && m.port !== servicePort) continue
      routes.push(compileRoute(vs, http, m, servicePort, env, statName, httpIndex, matchIndex))
    }
  }
  // An array built by push keeps spare capacity; tens of thousands of route lists keep the exact size.
  return routes.slice()
}

/** The live view's route name: `<namespace>/<VirtualService name>/<http[] name, or its index>` (docs/live.md). */
function routeStatName(vs: VirtualServiceResource, http: HttpRouteSpec, index: number): string {
  return flat(vs.namespace, '/', vs.name, '/', http.name ?? index)
}

/** sourceLabels, sourceNamespace and gateways select which proxies a match block applies to. */
function appliesToThisProxy(m: MatchSpec, node: NodeIdentity): boolean {
  for (const [key, value] of Object.entries(m.sourceLabels ?? {})) {
    if (node.labels[key] !== value) return false
  }
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== node.namespace) return false
  if (m.gateways !== undefined && m.gateways.length > 0 && !m.gateways.includes('mesh')) return false
  return true
}

function compileRoute(
  vs: VirtualServiceResource,
  http: HttpRouteSpec,
  m: MatchSpec | undefined,
  servicePort: number,
  env: RouteCompileEnv,
  statName: string,
  httpIndex: number,
  matchIndex: number,
): Route {
  return new Route({
    name: http.name ?? '',
    statName,
    httpIndex,
    matchIndex,
    match: m === undefined ? undefined : compileMatch(m),
    action: compileAction(vs, http, m, servicePort, env),
    requestHeaders: edits(http.headers?.request),
    responseHeaders: edits(http.headers?.response),
    timeoutMs: http.timeout === undefined ? 0 : parseDurationMs(http.timeout),
    fault: compileFault(http.fault),
    retryPolicy: compileRetries(http.retries),
    mirrors: compileMirrors(vs, http, servicePort, env),
    cors: compileCors(http.corsPolicy),
  })
}

function edits(spec: ConstructorParameters<typeof HeaderEdits>[0] | undefined): HeaderEdits {
  if (spec === undefined) return HeaderEdits.none
  const e = new HeaderEdits(spec)
  return e.isEmpty ? HeaderEdits.none : e
}

function compileMatch(m: MatchSpec): RequestMatch {
  const headers: HeaderCondition[] = []
  for (const [name, spec] of Object.entries(m.headers ?? {})) {
    headers.push({ name: name.toLowerCase(), matcher: compileStringMatch(spec), inverted: false })
  }
  for (const [name, spec] of Object.entries(m.withoutHeaders ?? {})) {
    headers.push({ name: name.toLowerCase(), matcher: compileStringMatch(spec), inverted: true })
  }
  const queryParams: QueryCondition[] = Object.entries(m.queryParams ?? {}).map(([name, spec]) => ({
    name,
    matcher: compileStringMatch(spec),
  }))
  return new RequestMatch({
    uri: optionalMatch(m.uri, m.ignoreUriCase === true),
    scheme: optionalMatch(m.scheme),
    method: optionalMatch(m.method),
    authority: optionalMatch(m.authority),
    port: m.port,
    headers: headers.slice(),
    queryParams,
  })
}

function optionalMatch(spec: StringMatchSpec | undefined, ignoreCase = false) {
  return spec === undefined ? undefined : compileStringMatch(spec, ignoreCase)
}

function compileAction(
  vs: VirtualServiceResource,
  http: HttpRouteSpec,
  m: MatchSpec | undefined,
  servicePort: number,
  env: RouteCompileEnv,
): RouteAction {
  if (http.directResponse !== undefined) {
    const body = http.directResponse.body
    return {
      kind: 'direct',
      status: http.directResponse.status,
      body:
        body?.string !== undefined
          ? Buffer.from(body.string)
          : body?.bytes !== undefined
            ? Buffer.from(body.bytes, 'base64')
            : undefined,
    }
  }
  if (http.redirect !== undefined) {
    const r = http.redirect
    return {
      kind: 'redirect',
      uri: r.uri,
      authority: r.authority,
      port: r.port,
      derivePort: r.derivePort,
      scheme: r.scheme,
      status: r.redirectCode ?? 301,
    }
  }
  const targets = http.route ?? []
  const allUnweighted = targets.every((t) => t.weight === undefined)
  const destinations: WeightedDestination[] = targets.map((t) => ({
    clusterName: destinationCluster(vs, t.destination, servicePort, env),
    weight: targets.length === 1 || allUnweighted ? 1 : (t.weight ?? 0),
    requestHeaders: edits(t.headers?.request),
    responseHeaders: edits(t.headers?.response),
  }))
  const live = destinations.every((d) => d.weight > 0)
    ? destinations
    : destinations.filter((d) => d.weight > 0).slice()
  return {
    kind: 'forward',
    destinations: live,
    totalWeight: live.reduce((sum, d) => sum + d.weight, 0),
    pathRewrite: pathRewrite(http, m),
    regexRewrite: regexRewrite(http),
    authorityRewrite: http.rewrite?.authority,
  }
}

function destinationCluster(
  vs: VirtualServiceResource,
  dest: { host: string; subset?: string; port?: { number?: number } },
  servicePort: number,
  env: RouteCompileEnv,
): string {
  const fqdn = toFqdn(dest.host, vs.namespace)
  let port = dest.port?.number
  if (port === undefined) {
    const service = env.services.get(fqdn)
    const ports = service?.ports ?? []
    // Istio: the port may be left out when the destination has one port; else it is the port asked for.
    port = ports.length === 1 ? ports[0].number : servicePort
  }
  const name = outboundClusterName(port, dest.subset ?? '', fqdn)
  return env.clusters?.get(name)?.name ?? name
}

function pathRewrite(http: HttpRouteSpec, m: MatchSpec | undefined): PathRewrite | undefined {
  const uri = http.rewrite?.uri
  if (uri === undefined) return undefined
  const match = m?.uri
  if (match === undefined) return { prefix: '/', replacement: uri }
  if (match.prefix !== undefined) return { prefix: match.prefix, replacement: uri }
  return { replacement: uri }
}

function regexRewrite(http: HttpRouteSpec): RegexRewrite | undefined {
  const rx = http.rewrite?.uriRegexRewrite
  if (rx === undefined) return undefined
  // Envoy's substitution uses `\1` for groups; re2js uses `$1`.
  return { pattern: compileRe2(rx.match), replacement: rx.rewrite.replace(/\\(\d)/g, '$$$1') }
}

/** Istio's translateFault: `percentage` wins over the deprecated `percent`; neither means 0%, as in Envoy. */
function compileFault(spec: HttpFaultSpec | undefined): FaultPolicy | undefined {
  if (spec === undefined) return undefined
  const delay = spec.delay
  const abort = spec.abort
  const grpc = abort?.grpcStatus
  return {
    delayMs: delay?.fixedDelay === undefined ? 0 : parseDurationMs(delay.fixedDelay),
    delayPercent: delay?.percentage?.value ?? delay?.percent ?? 0,
    abort:
      abort === undefined || (abort.httpStatus === undefined && grpc === undefined)
        ? undefined
        : {
            httpStatus: abort.httpStatus,
            grpcStatus:
              grpc === undefined ? undefined : (GRPC_STATUS_NAMES as readonly string[]).indexOf(grpc),
            percent: abort.percentage?.value ?? 0,
          },
  }
}

/** Istio's retry.ConvertPolicy: no `retries` means Istio's default policy; `attempts: 0` turns retrying off. */
function compileRetries(spec: HttpRetrySpec | undefined): RetryPolicy | undefined {
  if (spec === undefined) return defaultRetryPolicy
  if (spec.attempts <= 0) return undefined
  const retryOn =
    spec.retryOn === undefined || spec.retryOn.trim() === ''
      ? { on: defaultRetryPolicy.on, statusCodes: new Set(defaultRetryPolicy.statusCodes) }
      : parseRetryOn(spec.retryOn)
  return {
    numRetries: spec.attempts,
    perTryTimeoutMs: spec.perTryTimeout === undefined ? 0 : parseDurationMs(spec.perTryTimeout),
    ...retryOn,
    skipPreviousHosts: spec.retryIgnorePreviousHosts !== false,
    retryRemoteLocalities: spec.retryRemoteLocalities === true,
    backoffBaseMs: spec.backoff === undefined ? DEFAULT_BACKOFF_MS : parseDurationMs(spec.backoff),
  }
}

/** Istio's mirror (with mirrorPercentage, else the deprecated mirrorPercent, else 100%) or mirrors[]. */
function compileMirrors(
  vs: VirtualServiceResource,
  http: HttpRouteSpec,
  servicePort: number,
  env: RouteCompileEnv,
): MirrorPolicy[] {
  const out: MirrorPolicy[] = []
  if (http.mirror !== undefined) {
    out.push({
      clusterName: destinationCluster(vs, http.mirror, servicePort, env),
      percent: http.mirrorPercentage?.value ?? http.mirrorPercent ?? 100,
    })
  }
  for (const m of http.mirrors ?? []) {
    out.push({
      clusterName: destinationCluster(vs, m.destination, servicePort, env),
      percent: m.percentage?.value ?? 100,
    })
  }
  return out.filter((m) => m.percent > 0)
}

/** Istio's translateCORSPolicy: origins as StringMatch (the deprecated allowOrigin as exact), lists joined. */
function compileCors(spec: CorsPolicySpec | undefined): CorsPolicy | undefined {
  if (spec === undefined) return undefined
  const join = (list: readonly string[]): string | undefined =>
    list.length === 0 ? undefined : list.join(',')
  return {
    origins: [
      ...spec.allowOrigins.map((m) => compileStringMatch(m)),
      ...spec.allowOrigin.map((exact) => compileStringMatch({ exact })),
    ],
    allowMethods: join(spec.allowMethods),
    allowHeaders: join(spec.allowHeaders),
    exposeHeaders: join(spec.exposeHeaders),
    maxAge: spec.maxAge === undefined ? undefined : String(Math.floor(parseDurationMs(spec.maxAge) / 1000)),
    allowCredentials: spec.allowCredentials === true,
    forwardUnmatchedPreflights: spec.unmatchedPreflights !== 'IGNORE',
  }
}
