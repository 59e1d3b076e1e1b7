// DestinationRule traffic policy ──► ClusterPolicy: Istio's subset and port-level merge, then its Envoy defaults.

import { parseDurationMs } from '../duration.ts'
import type { ClientTlsSettings } from '../istio/client-tls-settings.ts'
import type {
  ConnectionPoolSettings,
  LoadBalancerSettings,
  OutlierDetectionSettings,
  RetryBudgetSettings,
  TrafficPolicy,
} from '../istio/destination-rule.ts'
import {
  type ClusterPolicy,
  type ConnectionPoolModel,
  type HashKeyModel,
  type LoadBalancerModel,
  type OutlierDetectionModel,
  type RetryBudgetModel,
  UNLIMITED,
  type WarmupModel,
} from '../model.ts'

/** Istio's default connect timeout (meshConfig.connectTimeout). */
export const defaultConnectTimeoutMs = 10_000

/** The policy fields a cluster uses, after merging. */
export interface MergedTrafficPolicy {
  readonly loadBalancer: LoadBalancerSettings | undefined
  readonly connectionPool: ConnectionPoolSettings | undefined
  readonly outlierDetection: OutlierDetectionSettings | undefined
  readonly retryBudget: RetryBudgetSettings | undefined
  readonly tls: ClientTlsSettings | undefined
}

const empty: MergedTrafficPolicy = {
  loadBalancer: undefined,
  connectionPool: undefined,
  outlierDetection: undefined,
  retryBudget: undefined,
  tls: undefined,
}

/**
 * A policy's settings for one service port. A matching `portLevelSettings` entry replaces the
 * load balancer, connection pool, outlier detection and tls wholesale: fields it omits take their
 * defaults, not the destination-level values (istio/api TrafficPolicy.port_level_settings).
 */
function forPort(policy: TrafficPolicy | undefined, port: number): [MergedTrafficPolicy, boolean] {
  if (policy === undefined) return [empty, false]
  const own = policy.portLevelSettings.find((p) => p.port.number === port)
  if (own === undefined) {
    const { loadBalancer, connectionPool, outlierDetection, retryBudget, tls } = policy
    return [{ loadBalancer, connectionPool, outlierDetection, retryBudget, tls }, false]
  }
  const { loadBalancer, connectionPool, outlierDetection, tls } = own
  return [{ loadBalancer, connectionPool, outlierDetection, retryBudget: policy.retryBudget, tls }, true]
}

/**
 * Istio's MergeSubsetTrafficPolicy: the destination-level policy for the port, overridden field by
 * field by the subset's (a subset's port-level entry overrides every field, set or not).
 */
export function mergeTrafficPolicy(
  destination: TrafficPolicy | undefined,
  subset: TrafficPolicy | undefined,
  port: number,
): MergedTrafficPolicy {
  const [top] = forPort(destination, port)
  if (subset === undefined) return top
  const [own, portLevel] = forPort(subset, port)
  const pick = <K extends keyof MergedTrafficPolicy>(key: K): MergedTrafficPolicy[K] =>
    own[key] !== undefined || (portLevel && key !== 'retryBudget') ? own[key] : top[key]
  return {
    loadBalancer: pick('loadBalancer'),
    connectionPool: pick('connectionPool'),
    outlierDetection: pick('outlierDetection'),
    retryBudget: pick('retryBudget'),
    tls: pick('tls'),
  }
}

const ms = (duration: string | undefined): number | undefined =>
  duration === undefined ? undefined : parseDurationMs(duration)

/** Istio sets a threshold only when the field is positive; otherwise Envoy's limit is 2^32-1. */
const limit = (n: number | undefined): number => (n !== undefined && n > 0 ? n : UNLIMITED)

function hashKey(hash: NonNullable<LoadBalancerSettings['consistentHash']>): HashKeyModel {
  if (hash.httpHeaderName !== undefined) return { kind: 'header', name: hash.httpHeaderName.toLowerCase() }
  if (hash.httpCookie !== undefined) {
    const ttl = ms(hash.httpCookie.ttl)
    return {
      kind: 'cookie',
      name: hash.httpCookie.name,
      path: hash.httpCookie.path ?? '',
      ttlSeconds: ttl === undefined ? undefined : Math.floor(ttl / 1000),
      attributes: hash.httpCookie.attributes.map((a) => ({ name: a.name, value: a.value ?? '' })),
    }
  }
  if (hash.useSourceIp === true) return { kind: 'sourceIp' }
  if (hash.httpQueryParameterName !== undefined)
    return { kind: 'queryParameter', name: hash.httpQueryParameterName }
  return { kind: 'none' }
}

/** Istio's applyLoadBalancer: without `simple` (or with UNSPECIFIED) Istio's default is LEAST_REQUEST. */
export function loadBalancerModel(lb: LoadBalancerSettings | undefined): LoadBalancerModel {
  const hash = lb?.consistentHash
  if (hash !== undefined) {
    const key = hashKey(hash)
    if (hash.maglev !== undefined)
      return { kind: 'MAGLEV', hashKey: key, tableSize: hash.maglev.tableSize ?? 65537 }
    const ringSize = hash.ringHash !== undefined ? hash.ringHash.minimumRingSize : hash.minimumRingSize
    return { kind: 'RING_HASH', hashKey: key, minimumRingSize: ringSize || 1024 }
  }
  switch (lb?.simple) {
    case 'LEAST_CONN':
    case 'LEAST_REQUEST':
      return { kind: 'LEAST_REQUEST' }
    case 'RANDOM':
      return { kind: 'RANDOM' }
    case 'ROUND_ROBIN':
      return { kind: 'ROUND_ROBIN' }
    default:
      return { kind: 'LEAST_REQUEST' }
  }
}

/** Istio's applyConnectionPool: thresholds, idle timeout (http's, else tcp's), keepalive. */
export function connectionPoolModel(cp: ConnectionPoolSettings | undefined): ConnectionPoolModel {
  const http = cp?.http
  const tcp = cp?.tcp
  const keepalive = tcp?.tcpKeepalive
  return {
    maxConnections: limit(tcp?.maxConnections),
    maxPendingRequests: limit(http?.http1MaxPendingRequests),
    maxRequests: limit(http?.http2MaxRequests),
    maxRetries: limit(http?.maxRetries),
    maxRequestsPerConnection: http?.maxRequestsPerConnection ?? 0,
    idleTimeoutMs: ms(http?.idleTimeout) ?? ms(tcp?.idleTimeout),
    maxConnectionDurationMs: ms(tcp?.maxConnectionDuration),
    tcpKeepaliveTimeMs: keepalive === undefined ? undefined : (ms(keepalive.time) ?? 0),
    h2Upgrade: http?.h2UpgradePolicy === 'UPGRADE',
    useClientProtocol: http?.useClientProtocol === true,
    maxConcurrentStreams: limit(http?.maxConcurrentStreams),
  }
}

/** Istio's applyOutlierDetection over Envoy's defaults (success-rate ejection disabled). */
export function outlierDetectionModel(
  od: OutlierDetectionSettings | undefined,
): OutlierDetectionModel | undefined {
  if (od === undefined) return undefined
  const baseEjectionTimeMs = ms(od.baseEjectionTime) ?? 30_000
  return {
    consecutive5xxErrors: od.consecutive5xxErrors ?? 5,
    consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? 0,
    splitExternalLocalOriginErrors: od.splitExternalLocalOriginErrors,
    consecutiveLocalOriginFailures: od.consecutiveLocalOriginFailures || 5,
    intervalMs: ms(od.interval) ?? 10_000,
    baseEjectionTimeMs,
    maxEjectionTimeMs: Math.max(300_000, baseEjectionTimeMs),
    // Istio passes maxEjectionPercent only when positive: 0 means Envoy's default, 10.
    maxEjectionPercent: od.maxEjectionPercent || 10,
    minHealthPercent: od.minHealthPercent ?? 0,
    httpErrorCodes: od.outlierDetectionHttpErrorCodes,
  }
}

/** Istio's retry budget defaults: 20% of active requests, at least 3 concurrent retries. */
export function retryBudgetModel(budget: RetryBudgetSettings | undefined): RetryBudgetModel | undefined {
  if (budget === undefined) return undefined
  return { percent: budget.percent ?? 20, minRetryConcurrency: budget.minRetryConcurrency || 3 }
}

/** Set once `defaultClusterPolicy` exists: every cluster without a policy shares that one object. */
let sharedDefault: ClusterPolicy | undefined

export function clusterPolicy(merged: MergedTrafficPolicy): ClusterPolicy {
  if (merged === empty && sharedDefault !== undefined) return sharedDefault
  return {
    loadBalancer: loadBalancerModel(merged.loadBalancer),
    connectionPool: connectionPoolModel(merged.connectionPool),
    outlierDetection: outlierDetectionModel(merged.outlierDetection),
    retryBudget: retryBudgetModel(merged.retryBudget),
    warmup: warmupModel(merged.loadBalancer),
  }
}

/**
 * Istio's slow start: `warmup` (minimumPercent 10 and aggression 1 unless set) or the deprecated
 * `warmupDurationSecs`, for the round-robin and least-request balancers only.
 */
export function warmupModel(lb: LoadBalancerSettings | undefined): WarmupModel | undefined {
  if (lb === undefined || lb.consistentHash !== undefined || lb.simple === 'RANDOM') return undefined
  const duration = lb.warmup?.duration ?? lb.warmupDurationSecs
  const durationMs = ms(duration)
  if (durationMs === undefined || durationMs <= 0) return undefined
  return {
    durationMs,
    minWeightFactor: (lb.warmup?.minimumPercent ?? 10) / 100,
    aggression: lb.warmup?.aggression ?? 1,
  }
}

/** The policy of a cluster no DestinationRule configures (and of inbound clusters). */
export const defaultClusterPolicy: ClusterPolicy = clusterPolicy(empty)
sharedDefault = defaultClusterPolicy

export function connectTimeoutMs(merged: MergedTrafficPolicy): number {
  return ms(merged.connectionPool?.tcp?.connectTimeout) ?? defaultConnectTimeoutMs
}
