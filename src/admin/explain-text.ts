// An Explanation as readable text: Listener, Virtual host, Routes, Action, Cluster, Policies, Authorization.

import type { HeaderEditsDescription } from '../route/header-edits.ts'
import { formatAuthz } from './authz-check.ts'
import type { ExplainedCluster, ExplainedLeftOut, ExplainedRoute, Explanation } from './explain.ts'

function routeLabel(r: ExplainedRoute): string {
  const where =
    r.http === null ? `route ${r.index}` : `http[${r.http}]${r.match === null ? '' : ` match[${r.match}]`}`
  return r.name === '' ? where : `${where} "${r.name}"`
}

function editsLines(what: string, edits: HeaderEditsDescription): string[] {
  const lines: string[] = []
  for (const [name, value] of edits.set) lines.push(`${what}: set ${name}: ${value}`)
  for (const [name, value] of edits.add) lines.push(`${what}: add ${name}: ${value}`)
  for (const name of edits.remove) lines.push(`${what}: remove ${name}`)
  return lines
}

function durationText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

function clusterLines(c: ExplainedCluster): string[] {
  if (!c.defined) return [`  ${c.name}: ${c.health}`]
  const lines = [
    `  ${c.name}`,
    `    service ${c.host ?? '-'} port ${c.port ?? '-'}${c.subset ? ` subset ${c.subset}` : ''}; lb ${c.loadBalancer}; ${c.discovery}; connect timeout ${durationText(c.connectTimeoutMs ?? 0)}`,
  ]
  const od = c.outlierDetection
  if (od !== null)
    lines.push(
      `    outlier detection: ${od.consecutive5xxErrors} consecutive 5xx / ${od.consecutiveGatewayErrors} gateway errors, every ${durationText(od.intervalMs)}, eject ${durationText(od.baseEjectionTimeMs)}, at most ${od.maxEjectionPercent}%`,
    )
  lines.push(`    endpoints (health: ${c.health}):`)
  if (c.endpoints.length === 0)
    lines.push(
      c.discovery === 'ORIGINAL_DST'
        ? '      the connection’s original destination'
        : '      none: the router answers 503 UH (no healthy upstream)',
    )
  for (const e of c.endpoints) {
    const active = e.activeRequests === null ? '' : `, ${e.activeRequests} active`
    const locality = e.locality === '' ? '' : `, locality ${e.locality}`
    lines.push(
      `      ${e.address}  ${e.health}${active}, weight ${e.weight}${locality}${e.priority > 0 ? `, priority ${e.priority}` : ''}`,
    )
  }
  return lines
}

/** The text `outrigger explain` prints (and admin /explain without `format=json`). */
export function formatExplanation(e: Explanation): string {
  const out: string[] = []
  const r = e.request
  const headers = Object.entries(r.headers).map(([n, v]) => ` ${n}:${v}`)
  out.push(
    `${r.method} ${r.scheme}://${r.authority}${r.path}${headers.join('')}  (${r.direction}, ${e.mode})`,
  )
  if (r.sourcePrincipal !== null) out.push(`source principal ${r.sourcePrincipal}`)

  const l = e.listener
  out.push('', 'Listener')
  if (l.found)
    out.push(
      `  ${l.name}: ${l.direction} on ${l.address}${l.protocol === 'auto' ? '' : `, protocol ${l.protocol}`}, serves ${l.serve}`,
    )
  out.push(`  ${l.note}`)

  if (e.virtualHost !== null || l.serve === 'http' || l.serve === 'detect' || l.serve === 'tls-terminate') {
    out.push('', 'Virtual host')
    const vh = e.virtualHost
    if (vh === null) out.push(`  none for ${r.authority}`)
    else {
      out.push(
        `  ${vh.name}${vh.virtualService === null ? ' (default route: no VirtualService)' : ` from VirtualService ${vh.virtualService}`}`,
      )
      out.push(`  ${vh.why}`)
    }
  }

  if (e.routes.length > 0 || e.leftOut.length > 0) {
    out.push('', 'Routes')
    // Left-out blocks go where their http[] index puts them among the routes.
    const left = e.leftOut
    const leftLine = (l: ExplainedLeftOut): string =>
      `  - http[${l.http}]${l.match === null ? '' : ` match[${l.match}]`}: ${l.reason}`
    let next = 0
    for (const route of e.routes) {
      for (; next < left.length && route.http !== null && left[next].http <= route.http; next++)
        out.push(leftLine(left[next]))
      out.push(route.matched ? `  ✓ ${routeLabel(route)}` : `  ✗ ${routeLabel(route)}: ${route.reason}`)
    }
    for (; next < left.length; next++) out.push(leftLine(left[next]))
  }

  out.push('', 'Action', `  ${e.outcome}`)
  const a = e.action
  if (a?.kind === 'forward') {
    for (const d of a.destinations) {
      const to =
        d.host === null ? d.cluster : `${d.host}${d.subset ? ` subset ${d.subset}` : ''} port ${d.port}`
      out.push(`  → ${to}: weight ${d.weight} (${d.percent}%)`)
      out.push(
        ...editsLines('      request header', d.requestHeaders),
        ...editsLines('      response header', d.responseHeaders),
      )
    }
    if (a.rewrite.uri !== null || a.rewrite.uriRegex !== null)
      out.push(`  rewrite path: ${r.path} → ${a.upstreamPath}`)
    if (a.rewrite.authority !== null) out.push(`  rewrite authority: ${a.rewrite.authority}`)
  } else if (a?.kind === 'direct' && a.body !== null) {
    out.push(`  body: ${JSON.stringify(a.body.length > 200 ? `${a.body.slice(0, 200)}…` : a.body)}`)
  } else if (a?.kind === 'tcp') {
    for (const route of a.routes) out.push(`  tcp route ${route.name || '-'} → ${route.clusters.join(', ')}`)
  }

  if (e.clusters.length > 0) {
    out.push('', 'Cluster')
    for (const c of e.clusters) out.push(...clusterLines(c))
  }

  const p = e.policies
  if (p !== null) {
    // Timeout, retries, mirrors and request edits act on forwarded requests only; the fault filter runs first for all.
    const forward = a?.kind === 'forward'
    out.push('', 'Policies')
    if (forward) out.push(`  timeout: ${p.timeoutMs === 0 ? 'none' : durationText(p.timeoutMs)}`)
    if (forward)
      out.push(
        p.retry === null
          ? '  retries: off'
          : `  retries: ${p.retry.attempts} attempts, per try timeout ${p.retry.perTryTimeoutMs === 0 ? 'none' : durationText(p.retry.perTryTimeoutMs)}, retryOn ${p.retry.retryOn.join(',')}${p.retry.retriableStatusCodes.length > 0 ? ` (${p.retry.retriableStatusCodes.join(',')})` : ''}`,
      )
    if (p.fault === null) out.push('  fault: none')
    else {
      if (p.fault.delay !== null)
        out.push(`  fault: delay ${durationText(p.fault.delay.ms)} for ${p.fault.delay.percent}% of requests`)
      const abort = p.fault.abort
      if (abort !== null)
        out.push(
          `  fault: abort with ${abort.httpStatus ?? '-'}${abort.grpcStatus === null ? '' : ` (grpc-status ${abort.grpcStatus})`} for ${abort.percent}% of requests`,
        )
    }
    if (forward) for (const m of p.mirrors) out.push(`  mirror: ${m.percent}% to ${m.cluster}`)
    if (forward) out.push(...editsLines('  request header', p.requestHeaders))
    out.push(...editsLines('  response header', p.responseHeaders))
    if (p.cors) out.push('  cors: a CORS policy applies')
  }

  const z = e.authorization
  if (z !== null) {
    out.push('', 'Authorization')
    out.push(
      z.mtls === null
        ? '  mTLS: no PeerAuthentication mode on this port'
        : `  mTLS: ${z.mtls.mode} (${z.mtls.policy === '' ? "Istio's default" : `PeerAuthentication ${z.mtls.policy}`})${z.mtls.mode === 'STRICT' && r.sourcePrincipal === null ? ': a request without a client certificate is refused' : ''}`,
    )
    for (const line of formatAuthz(z.decision, z.policies).trimEnd().split('\n')) out.push(`  ${line}`)
  }
  return `${out.join('\n')}\n`
}
