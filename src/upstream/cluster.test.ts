// Unit tests for a cluster at run time: ejected endpoints left out, panic mode, limits, and reloads.

import { afterEach, describe, expect, it } from 'vitest'
import { staticEndpoint } from '../config/compile/clusters.ts'
import { defaultClusterPolicy } from '../config/compile/traffic-policy.ts'
import type { ClusterModel, ClusterPolicy, OutlierDetectionModel } from '../config/model.ts'
import { SharedCounters } from '../shared/shared-counters.ts'
import { Cluster, endpointShare } from './cluster.ts'
import { request } from './lb/test-support.ts'

const od: OutlierDetectionModel = {
  consecutive5xxErrors: 1,
  consecutiveGatewayErrors: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 60_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 100,
  minHealthPercent: 0,
  httpErrorCodes: [],
}

function model(policy: Partial<ClusterPolicy> = {}, ports = [1, 2, 3]): ClusterModel {
  return {
    name: 'outbound|80||svc.default.svc.cluster.local',
    direction: 'outbound',
    host: 'svc.default.svc.cluster.local',
    port: 80,
    subset: '',
    protocol: 'HTTP',
    endpoints: ports.map((port) => staticEndpoint('127.0.0.1', port)),
    connectTimeoutMs: 1000,
    // Round robin, so a dozen picks reach every available endpoint (least request is random).
    policy: { ...defaultClusterPolicy, loadBalancer: { kind: 'ROUND_ROBIN' }, ...policy },
  }
}

const clusters: Cluster[] = []
function cluster(m: ClusterModel): Cluster {
  const c = new Cluster(m)
  clusters.push(c)
  return c
}
afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.close()))
})

const req = request()
const picks = (c: Cluster, n: number) => new Set(Array.from({ length: n }, () => c.pick(req)?.port ?? 'none'))

describe('Cluster', () => {
  it('leaves ejected endpoints out, and answers none when all are ejected', () => {
    const c = cluster(model({ outlierDetection: od }))
    c.endpoints[0].reportStatus(503)
    expect(c.endpoints[0].ejected).toBe(true)
    expect(picks(c, 12)).toEqual(new Set([2, 3]))
    c.endpoints[1].reportStatus(503)
    c.endpoints[2].reportFailure('connectFailure')
    expect(c.pick(req)).toBeUndefined()
  })

  it('below minHealthPercent healthy, balances over every endpoint (panic mode)', () => {
    const c = cluster(model({ outlierDetection: { ...od, minHealthPercent: 50 } }))
    c.endpoints[0].reportStatus(503)
    expect(picks(c, 12)).toEqual(new Set([2, 3])) // 66% healthy
    c.endpoints[1].reportStatus(503)
    expect(picks(c, 12)).toEqual(new Set([1, 2, 3])) // 33% healthy: panic
  })

  it('rebuilds its hash ring without ejected endpoints', () => {
    const c = cluster(
      model({
        loadBalancer: {
          kind: 'RING_HASH',
          hashKey: { kind: 'header', name: 'x-user' },
          minimumRingSize: 1024,
        },
        outlierDetection: od,
      }),
    )
    const users = Array.from({ length: 60 }, (_, i) => request({ 'x-user': `user-${i}` }))
    const before = users.map((u) => c.pick(u))
    const victim = before[0]
    victim?.reportStatus(503)
    const after = users.map((u) => c.pick(u))
    expect(after).not.toContain(victim)
    // Users on the other endpoints mostly stay where they were.
    const stayed = before.filter((e, i) => e !== victim && after[i] === e).length
    const others = before.filter((e) => e !== victim).length
    expect(stayed / others).toBeGreaterThan(0.7)
  })

  it('keeps endpoints (pool, counters, outlier state) across a reload unless their pool settings change', () => {
    const c = cluster(model({ outlierDetection: od }))
    const [a, b] = c.endpoints
    a.reportStatus(503)
    c.apply(model({ outlierDetection: od }, [1, 2, 4]))
    expect(c.endpoints[0]).toBe(a)
    expect(c.endpoints[1]).toBe(b)
    expect(c.endpoints[0].ejected).toBe(true)
    const limits = { ...defaultClusterPolicy.connectionPool, maxConnections: 5 }
    c.apply(model({ outlierDetection: od, connectionPool: limits }, [1, 2, 4]))
    expect(c.endpoints[0]).not.toBe(a)
    expect(c.breaker.limits.maxConnections).toBe(5)
    // Without outlierDetection nothing is ejected.
    c.apply(model({}, [1, 2, 4]))
    expect(picks(c, 12)).toEqual(new Set([1, 2, 4]))
  })

  it('exposes the retry circuit breaker', () => {
    const limits = { ...defaultClusterPolicy.connectionPool, maxRetries: 2 }
    const c = cluster(model({ connectionPool: limits }))
    expect([c.tryStartRetry(), c.tryStartRetry(), c.tryStartRetry()]).toEqual([true, true, false])
    c.endRetry()
    expect(c.tryStartRetry()).toBe(true)
  })
})

describe('endpointShare', () => {
  const pool = defaultClusterPolicy.connectionPool
  it('splits maxConnections evenly over the endpoints, at least one each', () => {
    expect(endpointShare({ ...pool, maxConnections: 10 }, 3).maxConnections).toBe(3)
    expect(endpointShare({ ...pool, maxConnections: 2 }, 5).maxConnections).toBe(1)
    expect(endpointShare({ ...pool, maxConnections: 4 }, 1).maxConnections).toBe(4)
  })
  it('leaves an unlimited pool alone', () => {
    expect(endpointShare(pool, 4)).toBe(pool)
  })
})

/** Two workers' views of one cluster: the same model on one SharedCounters table, as two worker threads have. */
function twoWorkers(m: ClusterModel): [Cluster, Cluster] {
  const table = SharedCounters.create(64, false)
  const views: [Cluster, Cluster] = [
    new Cluster(m, undefined, undefined, table),
    new Cluster(m, undefined, undefined, table),
  ]
  clusters.push(...views)
  return views
}

describe('Cluster on a SharedCounters table shared by workers', () => {
  it('an ejection by one worker takes the endpoint out of the other worker’s picks', () => {
    const [w0, w1] = twoWorkers(model({ outlierDetection: od }))
    expect(picks(w1, 12)).toEqual(new Set([1, 2, 3]))
    w0.endpoints[0].reportStatus(503)
    expect(w1.endpoints[0].ejected).toBe(true)
    expect(picks(w1, 12)).toEqual(new Set([2, 3]))
    expect(w1.outlierDetector?.ejectionsTotal).toBe(1)
  })

  it('requests either worker starts count against one limit (http2MaxRequests 2)', () => {
    const pool = { ...defaultClusterPolicy.connectionPool, maxRequests: 2 }
    const [w0, w1] = twoWorkers(model({ connectionPool: pool }, [1]))
    const start = (c: Cluster): boolean => {
      const e = c.endpoints[0]
      if (!c.admits(e)) return false
      e.acquire()
      return true
    }
    expect([start(w0), start(w1), start(w1)]).toEqual([true, true, false])
    expect(w0.breaker.requestOverflows).toBe(1)
    w0.endpoints[0].release()
    expect(start(w1)).toBe(true)
    expect(w0.endpoints[0].activeRequests).toBe(2)
  })

  it('the retry budget is a share of the requests active on every worker, and its slots are shared', () => {
    const retryBudget = { percent: 20, minRetryConcurrency: 1 }
    const [w0, w1] = twoWorkers(model({ retryBudget }, [1]))
    for (let i = 0; i < 10; i++) w0.endpoints[0].acquire()
    for (let i = 0; i < 15; i++) w1.endpoints[0].acquire()
    // 20 % of 25 active requests: 5 retries in flight over both workers.
    const granted = [w0, w0, w0, w1, w1, w1, w0].map((c) => c.tryStartRetry())
    expect(granted).toEqual([true, true, true, true, true, false, false])
    expect(w1.breaker.retryOverflows).toBe(2)
    w0.endRetry()
    expect(w1.tryStartRetry()).toBe(true)
  })
})
