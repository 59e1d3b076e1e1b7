// Renders the compiled model, the last config error and warnings as plain JSON for /config_dump.

import type { Model } from '../config/model.ts'
import type { ProxyRuntime } from '../proxy-runtime.ts'
import type { RequestMatch } from '../route/request-match.ts'
import { retryOnNames } from '../route/retry-policy.ts'
import type { Route } from '../route/route.ts'
import type { StringMatcher } from '../route/string-match.ts'

function stringMatch(m: StringMatcher | undefined): Record<string, string> | undefined {
  if (m === undefined) return undefined
  return m.kind === 'present' ? {} : { [m.kind]: m.value }
}

function matchDump(match: RequestMatch | undefined): unknown {
  if (match === undefined) return undefined
  const p = match.parts
  return {
    uri: stringMatch(p.uri),
    scheme: stringMatch(p.scheme),
    method: stringMatch(p.method),
    authority: stringMatch(p.authority),
    port: p.port,
    headers: p.headers.map((h) => ({
      name: h.name,
      ...stringMatch(h.matcher),
      invert: h.inverted || undefined,
    })),
    queryParams: p.queryParams.map((q) => ({ name: q.name, ...stringMatch(q.matcher) })),
  }
}

function routeDump(route: Route): unknown {
  const a = route.action
  const action =
    a.kind === 'forward'
      ? {
          kind: a.kind,
          destinations: a.destinations.map((d) => ({ cluster: d.clusterName, weight: d.weight })),
          pathRewrite: a.pathRewrite,
          regexRewrite:
            a.regexRewrite === undefined
              ? undefined
              : { match: a.regexRewrite.pattern.pattern(), rewrite: a.regexRewrite.replacement },
          authorityRewrite: a.authorityRewrite,
        }
      : a.kind === 'direct'
        ? { kind: a.kind, status: a.status, bodyBytes: a.body?.length ?? 0 }
        : a
  const retry = route.retryPolicy
  const cors = route.cors
  return {
    name: route.name,
    match: matchDump(route.match),
    action,
    timeoutMs: route.timeoutMs,
    retries:
      retry === undefined
        ? undefined
        : { ...retry, on: retryOnNames(retry.on), statusCodes: [...retry.statusCodes] },
    fault: route.fault,
    mirrors: route.mirrors.length === 0 ? undefined : route.mirrors,
    cors: cors === undefined ? undefined : { ...cors, origins: cors.origins.map(stringMatch) },
  }
}

export function modelDump(model: Model): unknown {
  return {
    version: model.version,
    compiledAt: model.compiledAt,
    node: model.node,
    files: model.files,
    listeners: model.listeners.map((l) => ({
      name: l.name,
      direction: l.direction,
      address: l.address,
      port: l.port,
      protocol: l.protocol,
      serve: l.serve,
      tcpRoutes: l.tcpRoutes,
      routeTable: {
        name: l.routeTable.name,
        virtualHosts: l.routeTable.virtualHosts.map((vh) => ({
          name: vh.name,
          domains: vh.domains,
          routes: vh.routes.map(routeDump),
        })),
      },
    })),
    clusters: [...model.clusters.values()],
    telemetry: model.telemetry,
    // The DNS proxy's names (empty when it does not run), as the agent keeps its name table for debugging.
    dnsTable: {
      names: Object.fromEntries(model.dnsTable.names),
      wildcards: Object.fromEntries(
        [...model.dnsTable.wildcards].map(([suffix, addresses]) => [`*.${suffix}`, addresses]),
      ),
    },
    warnings: model.warnings,
  }
}

export function configDump(proxy: ProxyRuntime): unknown {
  return {
    model: proxy.hasModel ? modelDump(proxy.model) : null,
    lastError: proxy.lastError ?? null,
    reloads: proxy.reloadCounts,
  }
}
