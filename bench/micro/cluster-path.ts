// Micro-benchmark: per-request cost of the cluster path (pick, admit, acquire, report, release) per policy.
//
// Run: node bench/micro/cluster-path.ts   (prints ns per request for each load balancer and policy)

import { staticEndpoint } from '../../src/config/compile/clusters.ts'
import { defaultClusterPolicy } from '../../src/config/compile/traffic-policy.ts'
import type { ClusterModel, ClusterPolicy } from '../../src/config/model.ts'
import { Cluster } from '../../src/upstream/cluster.ts'
import type { LbRequest } from '../../src/upstream/lb/hash-policy.ts'

const N = 2_000_000

function model(policy: Partial<ClusterPolicy>): ClusterModel {
  return {
    name: 'outbound|80||svc.default.svc.cluster.local',
    direction: 'outbound',
    host: 'svc.default.svc.cluster.local',
    port: 80,
    subset: '',
    protocol: 'HTTP',
    endpoints: Array.from({ length: 8 }, (_, i) => staticEndpoint('127.0.0.1', 10_000 + i)),
    connectTimeoutMs: 1000,
    policy: { ...defaultClusterPolicy, ...policy },
  }
}

const request: LbRequest = {
  req: { rawHeaders: ['x-user', 'user-12345'], socket: { remoteAddress: '10.0.0.1' } },
  hashCookie: undefined,
}

function run(label: string, policy: Partial<ClusterPolicy>): Promise<void> {
  const cluster = new Cluster(model(policy))
  const once = (): void => {
    const e = cluster.pick(request)
    if (e === undefined || !cluster.admits(e)) throw new Error('no endpoint')
    e.acquire()
    e.reportStatus(200)
    e.release()
  }
  for (let i = 0; i < N; i++) once()
  const start = process.hrtime.bigint()
  for (let i = 0; i < N; i++) once()
  const ns = Number(process.hrtime.bigint() - start) / N
  console.log(`${label.padEnd(48)} ${ns.toFixed(1).padStart(7)} ns/request`)
  return cluster.close()
}

const outlierDetection = {
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
  minHealthPercent: 0,
  httpErrorCodes: [],
}
const header = { kind: 'header', name: 'x-user' } as const

await run('ROUND_ROBIN (default policy)', {})
await run('ROUND_ROBIN + limits + outlier detection', {
  connectionPool: { ...defaultClusterPolicy.connectionPool, maxConnections: 100, maxPendingRequests: 100 },
  outlierDetection,
})
await run('LEAST_REQUEST', { loadBalancer: { kind: 'LEAST_REQUEST' } })
await run('RANDOM', { loadBalancer: { kind: 'RANDOM' } })
await run('RING_HASH on a header', {
  loadBalancer: { kind: 'RING_HASH', hashKey: header, minimumRingSize: 1024 },
})
await run('MAGLEV on a header', { loadBalancer: { kind: 'MAGLEV', hashKey: header, tableSize: 65537 } })
