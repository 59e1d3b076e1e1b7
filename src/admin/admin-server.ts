// The admin endpoint (Envoy's paths): readiness, config dump, clusters, listeners, certs, Prometheus stats, logging, drain, quit.

import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8'
import { splitLocality } from '../config/locality.ts'
import { createServer } from '../protocol/node-http.ts'
import type { DrainListenersRequest, ProxyRuntime } from '../proxy-runtime.ts'
import { collectEnvoyStats } from '../runtime/envoy-stats.ts'
import type { TcpConnectionStats, TcpStatsTable } from '../tcp/tcp-stats.ts'
import { selectStats, statsFilterProblem, statsJson, statsText } from '../telemetry/envoy-stats-format.ts'
import { loadedModules } from '../telemetry/loaded-modules.ts'
import { getLogLevel, isLogLevel, setLogLevel } from '../telemetry/log.ts'
import type { Cluster } from '../upstream/cluster.ts'
import { type AuthzQuery, AuthzQueryError, checkAuthz, formatAuthz } from './authz-check.ts'
import { configDump } from './config-dump.ts'
import { serveDashboardFile } from './dashboard-files.ts'
import { explainPage } from './explain-page.ts'
import { configReport } from './live-config.ts'
import { liveHistoryPage, liveStatPage } from './live-stats-pages.ts'
import { liveTopPage } from './live-top-page.ts'
import type { OtherWorkers } from './other-workers.ts'
import { prometheusText } from './prometheus-stats.ts'
import { serveTap } from './tap-stream.ts'

export interface AdminActions {
  /** Called by POST /quitquitquit after the response is sent. */
  quit(): void
  /** The other worker threads (with --concurrency above 1): /stats/prometheus merges their metrics. */
  readonly otherWorkers?: OtherWorkers
}

/** The broadcast that makes the other worker threads drain their listeners as worker 0 does (POST /drain_listeners). */
export const DRAIN_LISTENERS_TOPIC = 'drain-listeners'

function send(res: ServerResponse, status: number, body: string, type = 'text/plain'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

const noTcp: TcpConnectionStats = { active: 0, total: 0, connectFailures: 0 }

/**
 * The opaque TCP proxy's connection counts (HTTP pools keep their own): `tcp_cx_active` (connecting
 * or open), `tcp_cx_total`, `tcp_cx_connect_fail`, and for the cluster `tcp_cx_overflow` (Envoy's
 * upstream_cx_overflow: connections closed because maxConnections were open). `cx_connect_fail`
 * counts HTTP and TCP connect failures together.
 */
function tcpStats(table: TcpStatsTable, owner: object): Record<string, number> {
  const s = table.peek(owner) ?? noTcp
  return { tcp_cx_active: s.active, tcp_cx_total: s.total, tcp_cx_connect_fail: s.connectFailures }
}

/** A cluster's TCP counts and its circuit breakers' overflows, under Envoy's stat names. */
function clusterStats(table: TcpStatsTable, c: Cluster): Record<string, number> {
  const b = c.breaker
  return {
    ...tcpStats(table, c),
    tcp_cx_overflow: b.connectionOverflows,
    upstream_rq_overflow: b.requestOverflows,
    upstream_rq_pending_overflow: b.pendingOverflows,
    upstream_rq_retry_overflow: b.retryOverflows,
  }
}

function clustersText(proxy: ProxyRuntime): string {
  const lines: string[] = []
  for (const c of proxy.clusters.clusters) {
    const limits = c.breaker.limits
    lines.push(`${c.name}::default_priority::max_connections::${limits.maxConnections}`)
    lines.push(`${c.name}::default_priority::max_pending_requests::${limits.maxPendingRequests}`)
    lines.push(`${c.name}::default_priority::max_requests::${limits.maxRequests}`)
    lines.push(`${c.name}::default_priority::max_retries::${limits.maxRetries}`)
    for (const [name, value] of Object.entries(clusterStats(proxy.tcpStats, c)))
      lines.push(`${c.name}::${name}::${value}`)
    for (const e of c.endpoints) {
      const prefix = `${c.name}::${e.hostPort}`
      lines.push(`${prefix}::cx_connect_fail::${e.connectFailures}`)
      for (const [name, value] of Object.entries(tcpStats(proxy.tcpStats, e)))
        lines.push(`${prefix}::${name}::${value}`)
      lines.push(`${prefix}::rq_active::${e.activeRequests}`)
      lines.push(`${prefix}::rq_total::${e.totalRequests}`)
      lines.push(`${prefix}::health_flags::${e.ejected ? '/failed_outlier_check' : 'healthy'}`)
      lines.push(`${prefix}::weight::${e.weight}`)
      const [region, zone, subzone] = splitLocality(e.locality)
      lines.push(
        `${prefix}::region::${region}`,
        `${prefix}::zone::${zone}`,
        `${prefix}::sub_zone::${subzone}`,
      )
      lines.push(`${prefix}::canary::false`, `${prefix}::priority::${e.priority}`)
    }
  }
  return `${lines.join('\n')}\n`
}

function clustersJson(proxy: ProxyRuntime): unknown {
  return {
    cluster_statuses: [...proxy.clusters.clusters].map((c) => ({
      name: c.name,
      stats: clusterStats(proxy.tcpStats, c),
      host_statuses: c.endpoints.map((e) => ({
        address: e.hostPort,
        stats: {
          cx_connect_fail: e.connectFailures,
          ...tcpStats(proxy.tcpStats, e),
          rq_active: e.activeRequests,
          rq_total: e.totalRequests,
        },
        health_status: { eds_health_status: 'HEALTHY', ...(e.ejected ? { failed_outlier_check: true } : {}) },
        weight: e.weight,
        locality: localityJson(e.locality),
        priority: e.priority,
      })),
    })),
  }
}

/** Envoy's Locality message: only the parts that are set. */
function localityJson(locality: string): Record<string, string> {
  const [region, zone, subzone] = splitLocality(locality)
  return {
    ...(region !== '' ? { region } : {}),
    ...(zone !== '' ? { zone } : {}),
    ...(subzone !== '' ? { sub_zone: subzone } : {}),
  }
}

/**
 * Envoy's /memory, for a V8 process: `allocated` is live heap, `heap_size` what V8 holds, and
 * `total_physical_bytes` the RSS; the heap spaces and off-heap buffers show where the rest is.
 */
function countByKind(kinds: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const kind of kinds) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

function memoryJson(proxy: ProxyRuntime): unknown {
  const usage = process.memoryUsage()
  return {
    allocated: String(usage.heapUsed),
    heap_size: String(usage.heapTotal),
    total_physical_bytes: String(usage.rss),
    external: String(usage.external),
    array_buffers: String(usage.arrayBuffers),
    // Not in Envoy's /memory: the limit the overload manager's heap pressure is measured against (this
    // thread's; node sizes it from the container's memory limit, docs/overload.md), and that limit.
    heap_size_limit: String(getHeapStatistics().heap_size_limit),
    old_generation_limit: String(proxy.overload.oldGenerationLimit),
    constrained_memory: String(process.constrainedMemory()),
    // Not in Envoy's /memory: the node and V8 flags the process runs with (the proxy adds its own,
    // src/cli/node-settings.ts), so the same settings can be seen however it was started.
    exec_argv: process.execArgv,
    // Not in Envoy's /memory: this thread's open handles and timers by kind (node's getActiveResourcesInfo), so a
    // test or an operator can see that a finished connection left no socket or timer behind.
    active_resources: countByKind(process.getActiveResourcesInfo()),
    heap_spaces: Object.fromEntries(
      getHeapSpaceStatistics().map((s) => [
        s.space_name,
        { size: s.space_size, used: s.space_used_size, physical: s.physical_space_size },
      ]),
    ),
  }
}

function listenersOf(proxy: ProxyRuntime) {
  return proxy.listeners.listeners.map((l) => ({
    name: l.model.name,
    direction: l.model.direction,
    address: `${l.model.address}:${l.model.port}`,
    bound: l.bound,
    error: l.error,
    connections: l.connections,
    // PeerAuthentication on an inbound port: its mode, the policy that set it, connections refused by reason.
    ...(l.model.mtls === undefined ? {} : { mtls: { ...l.model.mtls, refused: l.mtlsRefusals } }),
    // Envoy's listener.<address>.worker_<id>.downstream_cx_total, one entry per worker thread.
    worker_downstream_cx_total: l.workerConnections,
  }))
}

/**
 * Admin /stats as Envoy's: `name: value` lines sorted by name, `?format=json`, `?filter=<RE2 regex>`
 * and `?usedonly`; the counts are the whole proxy's (the shared table), whichever worker serves admin.
 */
function statsPage(proxy: ProxyRuntime, params: URLSearchParams, res: ServerResponse, json: boolean): void {
  const filter = params.get('filter') ?? undefined
  const problem = statsFilterProblem(filter)
  if (problem !== undefined) {
    send(res, 400, `${problem}\n`)
    return
  }
  const stats = selectStats(collectEnvoyStats(proxy), { filter, usedOnly: params.has('usedonly') })
  if (json) send(res, 200, statsJson(stats), 'application/json')
  else send(res, 200, statsText(stats))
}

/** Admin /authz: `outrigger authz check` on the running model (the workload's compiled AuthorizationPolicies). */
function authzPage(proxy: ProxyRuntime, params: URLSearchParams, res: ServerResponse, json: boolean): void {
  if (!proxy.hasModel) {
    send(res, 503, 'no model loaded yet\n')
    return
  }
  const text = (name: string): string | undefined => params.get(name) ?? undefined
  const port = text('port')
  const query: AuthzQuery = {
    method: text('method'),
    path: text('path'),
    host: text('host'),
    port: port === undefined ? firstInboundPort(proxy) : Number(port),
    principal: text('principal'),
    namespace: text('namespace'),
    requestPrincipal: text('request_principal') ?? text('requestPrincipal'),
    headers: params.getAll('header'),
    sourceIp: text('source_ip'),
    destinationIp: text('destination_ip'),
    sni: text('sni'),
    tcp: params.get('tcp') === 'true',
  }
  const authz = proxy.model.authz
  try {
    const explanation = checkAuthz(authz, query)
    if (json) send(res, 200, JSON.stringify(explanation, null, 2), 'application/json')
    else send(res, 200, formatAuthz(explanation, authz !== undefined))
  } catch (err) {
    if (!(err instanceof AuthzQueryError)) throw err
    send(res, 400, `${err.message}\n`)
  }
}

/** destination.port when the query names none: the first inbound listener's port, as a request to it would have. */
function firstInboundPort(proxy: ProxyRuntime): number {
  return proxy.model.listeners.find((l) => l.direction === 'inbound')?.port ?? 0
}

export function createAdminServer(proxy: ProxyRuntime, actions: AdminActions): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://admin')
    const json = url.searchParams.get('format') === 'json'
    const route = `${req.method} ${url.pathname}`
    switch (route) {
      case 'GET /ready':
        return proxy.ready
          ? send(res, 200, 'LIVE\n')
          : send(res, 503, proxy.hasModel ? 'DRAINING\n' : 'PRE_INITIALIZING\n')
      case 'GET /config_dump':
        return send(res, 200, JSON.stringify(configDump(proxy), null, 2), 'application/json')
      case 'GET /clusters':
        return json
          ? send(res, 200, JSON.stringify(clustersJson(proxy), null, 2), 'application/json')
          : send(res, 200, clustersText(proxy))
      case 'GET /listeners':
        return json
          ? send(res, 200, JSON.stringify(listenersOf(proxy), null, 2), 'application/json')
          : send(
              res,
              200,
              listenersOf(proxy)
                .map((l) => `${l.name}::${l.address}\n`)
                .join(''),
            )
      case 'GET /certs':
        return send(res, 200, JSON.stringify(proxy.certificates(), null, 2), 'application/json')
      case 'GET /stats':
        return statsPage(proxy, url.searchParams, res, json)
      case 'GET /stats/prometheus':
        return void prometheusText(proxy.stats, actions.otherWorkers).then(
          (body) => send(res, 200, body, proxy.stats.contentType),
          (error: Error) => send(res, 500, `${error.message}\n`),
        )
      case 'GET /authz':
        return authzPage(proxy, url.searchParams, res, json)
      case 'GET /memory':
        return send(res, 200, JSON.stringify(memoryJson(proxy), null, 2), 'application/json')
      case 'GET /modules':
        return send(res, 200, JSON.stringify(loadedModules(), null, 2), 'application/json')
      case 'GET /live/stat':
        return liveStatPage(proxy.live, url.searchParams, res, actions.otherWorkers)
      case 'GET /live/history':
        return liveHistoryPage(proxy.live, url.searchParams, res, actions.otherWorkers)
      case 'GET /live/top':
        return void liveTopPage(proxy.heavyHitters, actions.otherWorkers, url.searchParams, res)
      case 'GET /tap':
        return serveTap(proxy.tap, url.searchParams, res, actions.otherWorkers)
      case 'GET /explain': {
        const page = explainPage(proxy, url.searchParams, json)
        return send(res, page.status, page.body, page.type)
      }
      case 'POST /logging': {
        const level = url.searchParams.get('level')
        if (level !== null) {
          if (!isLogLevel(level)) return send(res, 400, `unknown level ${level}\n`)
          setLogLevel(level)
        }
        return send(res, 200, `active loggers:\n  outrigger: ${getLogLevel()}\n`)
      }
      case 'POST /drain_listeners': {
        const params = url.searchParams
        const request: DrainListenersRequest = {
          graceful: params.has('graceful'),
          inboundOnly: params.has('inboundonly'),
          skipExit: params.has('skip_exit'),
        }
        // Envoy's listeners_handler.cc: skip_exit keeps listeners open after the drain period only.
        if (request.skipExit && !request.graceful) return send(res, 400, 'skip_exit requires graceful\n')
        proxy.drainListeners(request)
        actions.otherWorkers?.broadcast(DRAIN_LISTENERS_TOPIC, request)
        return send(res, 200, 'OK\n')
      }
      case 'POST /quitquitquit':
        res.once('finish', () => actions.quit())
        return send(res, 200, 'OK\n')
      case 'GET /':
      case 'GET /dashboard/dashboard.js':
      case 'GET /dashboard/dashboard.css':
      case 'GET /dashboard/uplot.js':
      case 'GET /dashboard/uplot.css':
        return void serveDashboardFile(url.pathname, res)
      case 'GET /live/config':
        return send(res, 200, JSON.stringify(configReport(proxy), null, 2), 'application/json')
      case 'GET /help':
        return send(
          res,
          200,
          [
            'GET / (the dashboard)',
            'GET /help',
            'GET /ready',
            'GET /config_dump',
            'GET /clusters[?format=json]',
            'GET /listeners[?format=json]',
            'GET /certs',
            'GET /stats[?format=json][&filter=<regex>][&usedonly]',
            'GET /stats/prometheus',
            'GET /authz?method=&path=&principal=&header=name:value&port=&namespace=&request_principal=[&format=json]',
            'GET /memory',
            'GET /modules (the modules this thread loaded; every one with OUTRIGGER_RECORD_MODULES=1)',
            'GET /live/config',
            'GET /live/stat?by=service|route|cluster|listener&window=10s',
            'GET /live/history?by=service|route|cluster|listener&seconds=600',
            'GET /live/top?window=10s&limit=N',
            'GET /tap[?authority=host[:port]][&path=<prefix>][&method=][&status=2xx|404][&direction=][&max=N][&format=sse]',
            'GET /explain?authority=&path=&method=&header=name:value&source_principal=&port=&direction=[&format=json]',
            'POST /logging?level=<debug|info|warning|error>',
            'POST /drain_listeners[?inboundonly][&graceful][&skip_exit]',
            'POST /quitquitquit',
            '',
          ].join('\n'),
        )
      default:
        return send(res, 404, 'not found\n')
    }
  })
}
