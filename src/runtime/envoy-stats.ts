// The proxy's Envoy-style stats read at scrape time: per cluster, per listener, per HTTP connection manager, the inspectors, the server and config updates.

import type { ListenerModel, Model } from '../config/model.ts'
import type { ListenerManager } from '../listener/listener-manager.ts'
import { readDetectionStats, readListenerStats } from '../listener/listener-stats.ts'
import { readOverloadStats } from '../overload/overload-stats.ts'
import type { SharedCounters } from '../shared/shared-counters.ts'
import type { EnvoyStat } from '../telemetry/envoy-stat-tags.ts'
import { readHttpConnectionManagerStats } from '../telemetry/http-connection-manager-stats.ts'
import { readHttpLimitStats } from '../telemetry/http-limit-stats.ts'
import type { CertificateSet } from '../tls/certificate-details.ts'
import { daysUntilFirstCertExpiring } from '../tls/certificate-expiry-gauge.ts'
import { CircuitBreaker } from '../upstream/circuit-breaker.ts'
import { breakerKey, outlierKey } from '../upstream/cluster.ts'
import type { ClusterManager } from '../upstream/cluster-manager.ts'
import { readClusterStats } from '../upstream/cluster-stats.ts'
import { readOutlierCounts } from '../upstream/outlier-detection.ts'

/** What the stats read of the running proxy (ProxyRuntime has all of it). */
export interface EnvoyStatsSource {
  readonly counters: SharedCounters
  readonly clusters: ClusterManager
  readonly listeners: ListenerManager
  readonly hasModel: boolean
  readonly model: Model
  readonly ready: boolean
  readonly reloadCounts: { readonly succeeded: number; readonly failed: number }
  readonly worker: { readonly index: number; readonly count: number }
  /** This thread's taps (admin /tap streams are served by worker 0, whose counts these are). */
  readonly tap: { readonly size: number; readonly attachedTotal: number; readonly droppedTotal: number }
  certificates(): { certificates: CertificateSet[] }
}

const classNames = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const

/**
 * Every stat with its value now. Counts come from the SharedCounters table, so any worker reads the
 * whole proxy's; a cluster no request has built yet is read by name, with zeros where nothing counted.
 */
export function collectEnvoyStats(proxy: EnvoyStatsSource): EnvoyStat[] {
  const stats: EnvoyStat[] = []
  const counter = (name: string, value: number): void => {
    stats.push({ name, value, type: 'counter' })
  }
  const gauge = (name: string, value: number): void => {
    stats.push({ name, value, type: 'gauge' })
  }
  const counters = proxy.counters
  if (proxy.hasModel) {
    for (const name of proxy.model.clusters.keys()) clusterStats(proxy, name, counter, gauge)
  }
  let activeConnections = 0
  for (const { model } of proxy.listeners.listeners) {
    const listener = readListenerStats(counters, model.address, model.port)
    activeConnections += listener.downstream_cx_active
    const prefix = `listener.${listenerAddress(model)}`
    counter(`${prefix}.downstream_cx_total`, listener.downstream_cx_total)
    gauge(`${prefix}.downstream_cx_active`, listener.downstream_cx_active)
    counter(`${prefix}.downstream_cx_destroy`, listener.downstream_cx_destroy)
    counter(`${prefix}.downstream_cx_overflow`, listener.downstream_cx_overflow)
    counter(`${prefix}.downstream_global_cx_overflow`, listener.downstream_global_cx_overflow)
    counter(`${prefix}.downstream_cx_overload_reject`, listener.downstream_cx_overload_reject)
    if (model.serve === 'tcp' || model.serve === 'tls') continue
    const http = readHttpConnectionManagerStats(counters, model.name)
    // Istio's stat_prefix for a sidecar's HTTP connection manager: <direction>_<address>_<port>.
    const hcm = `http.${model.direction}_${model.address}_${model.port}`
    for (const [stat, value] of Object.entries(http)) counter(`${hcm}.${stat}`, value)
    const limits = readHttpLimitStats(counters, model.name)
    for (const [stat, value] of Object.entries(limits)) {
      if (!stat.startsWith('ssl.')) counter(`${hcm}.${stat}`, value)
      else if (model.tls !== undefined) counter(`${prefix}.${stat}`, value)
    }
  }
  for (const [stat, value] of Object.entries(readDetectionStats(counters))) counter(stat, value)
  serverStats(proxy, activeConnections, counter, gauge)
  for (const { name, value } of readOverloadStats(counters, proxy.worker.count)) gauge(name, value)
  // Not Envoy's: admin /tap streams open now and since start, and events dropped for clients that read too slowly.
  gauge('tap.streams_active', proxy.tap.size)
  counter('tap.streams_total', proxy.tap.attachedTotal)
  counter('tap.dropped_events', proxy.tap.droppedTotal)
  return stats
}

type Put = (name: string, value: number) => void

function clusterStats(proxy: EnvoyStatsSource, name: string, counter: Put, gauge: Put): void {
  const counters = proxy.counters
  const prefix = `cluster.${name}`
  const read = readClusterStats(counters, name)
  for (const [stat, value] of Object.entries(read.requests)) {
    if (stat === 'upstream_cx_active') gauge(`${prefix}.${stat}`, value)
    else counter(`${prefix}.${stat}`, value)
  }
  for (let i = 0; i < 5; i++) {
    counter(`${prefix}.upstream_rq_${classNames[i]}`, read.classes[i])
    counter(`${prefix}.retry.upstream_rq_${classNames[i]}`, read.retryClasses[i])
  }
  for (const [code, count, retried] of read.codes) {
    if (count > 0) counter(`${prefix}.upstream_rq_${code}`, count)
    if (retried > 0) counter(`${prefix}.retry.upstream_rq_${code}`, retried)
  }
  // The circuit breaker's cells, read through a breaker over the same block (nothing is claimed).
  const breakerBlock = counters.find(breakerKey(name))
  const breaker = breakerBlock === undefined ? undefined : new CircuitBreaker(breakerBlock)
  gauge(`${prefix}.upstream_rq_active`, breaker?.activeRequests ?? 0)
  gauge(`${prefix}.upstream_rq_pending_active`, breaker?.pendingRequests ?? 0)
  // Envoy's pools count both the pending and the max_requests overflow here (conn_pool_base.cc).
  counter(
    `${prefix}.upstream_rq_pending_overflow`,
    (breaker?.pendingOverflows ?? 0) + (breaker?.requestOverflows ?? 0),
  )
  counter(`${prefix}.upstream_rq_retry_overflow`, breaker?.retryOverflows ?? 0)
  counter(`${prefix}.upstream_cx_overflow`, breaker?.connectionOverflows ?? 0)
  const outlierBlock = counters.find(outlierKey(name))
  const outlier =
    outlierBlock === undefined
      ? { ejectionsActive: 0, ejectionsEnforcedTotal: 0, ejectionsOverflow: 0 }
      : readOutlierCounts(outlierBlock)
  gauge(`${prefix}.outlier_detection.ejections_active`, outlier.ejectionsActive)
  counter(`${prefix}.outlier_detection.ejections_enforced_total`, outlier.ejectionsEnforcedTotal)
  counter(`${prefix}.outlier_detection.ejections_overflow`, outlier.ejectionsOverflow)
  // Membership: the hosts this worker built (a DNS cluster's resolved addresses), else the model's.
  const built = proxy.clusters.built(name)
  const total = built?.endpoints.length ?? proxy.model.clusters.get(name)?.endpoints.length ?? 0
  gauge(`${prefix}.membership_total`, total)
  gauge(`${prefix}.membership_healthy`, Math.max(0, total - outlier.ejectionsActive))
  gauge(`${prefix}.membership_degraded`, 0)
}

/** Envoy's listener stat prefix: the address and port joined by `_`, an IPv6 address bracketed (`[__]_15006`). */
function listenerAddress(model: ListenerModel): string {
  const host = model.address.includes(':') ? `[${model.address}]` : model.address
  return `${host}_${model.port}`.replace(/:/g, '_')
}

/** Envoy's server.state values (envoy/admin/v3/server_info.proto ServerInfo.State). */
const LIVE = 0
const DRAINING = 1
const PRE_INITIALIZING = 2

function serverStats(proxy: EnvoyStatsSource, activeConnections: number, counter: Put, gauge: Put): void {
  const state = proxy.ready ? LIVE : proxy.hasModel ? DRAINING : PRE_INITIALIZING
  gauge('server.live', state === LIVE ? 1 : 0)
  gauge('server.state', state)
  gauge('server.uptime', Math.floor(process.uptime()))
  gauge('server.concurrency', proxy.worker.count)
  const memory = process.memoryUsage()
  gauge('server.memory_allocated', memory.heapUsed)
  gauge('server.memory_heap_size', memory.heapTotal)
  gauge('server.memory_physical_size', memory.rss)
  gauge('server.total_connections', activeConnections)
  gauge(
    'server.days_until_first_cert_expiring',
    daysUntilFirstCertExpiring(proxy.certificates().certificates),
  )
  // One compile of the resources makes both the clusters and the listeners (Envoy's CDS and LDS
  // updates): the first load and each reload count as an attempt of both.
  const { succeeded, failed } = proxy.reloadCounts
  const successes = (proxy.hasModel ? 1 : 0) + succeeded
  for (const api of ['cluster_manager.cds', 'listener_manager.lds']) {
    counter(`${api}.update_attempt`, successes + failed)
    counter(`${api}.update_success`, successes)
    counter(`${api}.update_rejected`, failed)
  }
  gauge('cluster_manager.active_clusters', proxy.hasModel ? proxy.model.clusters.size : 0)
  gauge('listener_manager.total_listeners_active', proxy.listeners.listeners.filter((l) => l.bound).length)
}

/** The stat registered in the Prometheus registry on its own (tls/certificate-expiry-gauge.ts). */
export const registeredElsewhere = new Set(['server.days_until_first_cert_expiring'])
