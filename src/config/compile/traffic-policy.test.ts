// Unit tests for DestinationRule traffic policies in clusters: Istio's subset/port merge and Envoy defaults.

import { describe, expect, it } from 'vitest'
import { bootstrapSchema } from '../../bootstrap/schema.ts'
import { compileModel } from '../compile.ts'
import { ConfigError } from '../messages.ts'
import { type ClusterPolicy, UNLIMITED } from '../model.ts'
import { parseResources } from '../parse-resources.ts'
import { defaultClusterPolicy } from './traffic-policy.ts'

const resources = (rule: string) => `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress: [{port: {number: 15001}, hosts: ["./*"]}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}, {number: 9090, name: http-admin, protocol: HTTP}]
  endpoints: [{address: 10.0.0.1, labels: {version: v1}}, {address: 10.0.0.2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
${rule}`

function clusters(
  rule: string,
): (port: number, subset?: string) => { policy: ClusterPolicy; connectTimeoutMs: number } {
  const b = { ...bootstrapSchema.parse({ node: { labels: { app: 'x' } } }), file: 'bootstrap.yaml' }
  const parsed = parseResources(resources(rule), 'istio.yaml', 'default')
  const errors = parsed.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0) throw new ConfigError(errors)
  const model = compileModel({
    bootstrap: b,
    resources: parsed.resources,
    files: [],
    warnings: [],
    version: 1,
  })
  return (port, subset = '') => {
    const c = model.clusters.get(`outbound|${port}|${subset}|reviews.default.svc.cluster.local`)
    if (c === undefined) throw new Error(`no cluster for ${port} ${subset}`)
    return c
  }
}

const defaultPool = defaultClusterPolicy.connectionPool

describe('cluster traffic policy', () => {
  it('without a DestinationRule policy: least request as in Istio, no limits, 10 s connect timeout, no outlier detection', () => {
    const c = clusters('  host: reviews\n')(9080)
    expect(c.connectTimeoutMs).toBe(10_000)
    expect(c.policy).toEqual({
      loadBalancer: { kind: 'LEAST_REQUEST' },
      connectionPool: {
        maxConnections: UNLIMITED,
        maxPendingRequests: UNLIMITED,
        maxRequests: UNLIMITED,
        maxRetries: UNLIMITED,
        maxRequestsPerConnection: 0,
        idleTimeoutMs: undefined,
        maxConnectionDurationMs: undefined,
        tcpKeepaliveTimeMs: undefined,
        h2Upgrade: false,
        useClientProtocol: false,
        maxConcurrentStreams: UNLIMITED,
      },
      outlierDetection: undefined,
      retryBudget: undefined,
    })
  })

  it('subsets override field by field; a port-level entry replaces lb, pool and outlier detection wholesale', () => {
    const c = clusters(`  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      tcp: {maxConnections: 10, connectTimeout: 250ms}
    retryBudget: {}
    portLevelSettings:
    - port: {number: 9090}
      loadBalancer: {consistentHash: {httpHeaderName: X-User}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      outlierDetection: {consecutive5xxErrors: 3}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      portLevelSettings:
      - port: {number: 9080}
        loadBalancer: {simple: RANDOM}
`)
    expect(c(9080).policy.loadBalancer).toEqual({ kind: 'LEAST_REQUEST' })
    expect(c(9080).policy.connectionPool.maxConnections).toBe(10)
    expect(c(9080).connectTimeoutMs).toBe(250)
    expect(c(9080).policy.retryBudget).toEqual({ percent: 20, minRetryConcurrency: 3 })

    const ring = { kind: 'RING_HASH', hashKey: { kind: 'header', name: 'x-user' }, minimumRingSize: 1024 }
    expect(c(9090).policy.loadBalancer).toEqual(ring)
    expect(c(9090).policy.connectionPool).toEqual(defaultPool)
    expect(c(9090).connectTimeoutMs).toBe(10_000)
    expect(c(9090).policy.retryBudget).toEqual({ percent: 20, minRetryConcurrency: 3 })

    expect(c(9080, 'v1').policy.loadBalancer).toEqual({ kind: 'LEAST_REQUEST' })
    expect(c(9080, 'v1').policy.connectionPool.maxConnections).toBe(10)
    expect(c(9080, 'v1').policy.outlierDetection?.consecutive5xxErrors).toBe(3)
    expect(c(9090, 'v1').policy.loadBalancer).toEqual(ring)
    expect(c(9090, 'v1').policy.outlierDetection?.consecutive5xxErrors).toBe(3)

    expect(c(9080, 'v2').policy.loadBalancer).toEqual({ kind: 'RANDOM' })
    expect(c(9080, 'v2').policy.connectionPool).toEqual(defaultPool)
    expect(c(9080, 'v2').connectTimeoutMs).toBe(10_000)
    expect(c(9090, 'v2').policy.loadBalancer).toEqual(ring)
  })

  it('maps the connection pool as Istio does (0 means unset; http idle timeout before tcp)', () => {
    const c = clusters(`  host: reviews
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 0, idleTimeout: 5s, maxConnectionDuration: 1m, tcpKeepalive: {}}
      http: {http1MaxPendingRequests: 1, http2MaxRequests: 100, maxRetries: 2, maxRequestsPerConnection: 1, idleTimeout: 2s,
        h2UpgradePolicy: UPGRADE, useClientProtocol: true, maxConcurrentStreams: 8}
`)
    expect(c(9080).policy.connectionPool).toEqual({
      maxConnections: UNLIMITED,
      maxPendingRequests: 1,
      maxRequests: 100,
      maxRetries: 2,
      maxRequestsPerConnection: 1,
      idleTimeoutMs: 2000,
      maxConnectionDurationMs: 60_000,
      tcpKeepaliveTimeMs: 0,
      h2Upgrade: true,
      useClientProtocol: true,
      maxConcurrentStreams: 8,
    })
  })

  it('fills outlier detection with Envoy defaults as Istio passes them', () => {
    const c = clusters(`  host: reviews
  trafficPolicy:
    outlierDetection: {maxEjectionPercent: 0, splitExternalLocalOriginErrors: true, baseEjectionTime: 10m}
`)
    expect(c(9080).policy.outlierDetection).toEqual({
      consecutive5xxErrors: 5,
      consecutiveGatewayErrors: 0,
      splitExternalLocalOriginErrors: true,
      consecutiveLocalOriginFailures: 5,
      intervalMs: 10_000,
      baseEjectionTimeMs: 600_000,
      maxEjectionTimeMs: 600_000,
      maxEjectionPercent: 10,
      minHealthPercent: 0,
      httpErrorCodes: [],
    })
  })

  it('reads consistent hash keys and algorithms', () => {
    const lb = (hash: string) =>
      clusters(`  host: reviews\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: ${hash}\n`)(9080)
        .policy.loadBalancer
    expect(lb('{useSourceIp: true, maglev: {}}')).toEqual({
      kind: 'MAGLEV',
      hashKey: { kind: 'sourceIp' },
      tableSize: 65537,
    })
    expect(lb('{httpQueryParameterName: u, ringHash: {minimumRingSize: 64}}')).toEqual({
      kind: 'RING_HASH',
      hashKey: { kind: 'queryParameter', name: 'u' },
      minimumRingSize: 64,
    })
    expect(lb('{httpCookie: {name: s, path: /, ttl: 90s}, minimumRingSize: 128}')).toEqual({
      kind: 'RING_HASH',
      hashKey: { kind: 'cookie', name: 's', path: '/', ttlSeconds: 90, attributes: [] },
      minimumRingSize: 128,
    })
    expect(lb('{}')).toEqual({ kind: 'RING_HASH', hashKey: { kind: 'none' }, minimumRingSize: 1024 })
  })
})
