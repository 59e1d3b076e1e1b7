// Scenario: locality-aware load balancing (DestinationRule localityLbSetting) over real upstreams in five localities.

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { send } from './harness/client.ts'
import { routeTo, serviceWithPolicy, sidecar, virtualService } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** Upstreams by name, with where they are and whether they answer 500 instead of 200 (a 503 would be retried elsewhere: Istio's default retry policy). */
const places = {
  local: 'us-east/a/rack1',
  zone: 'us-east/a/rack2',
  region: 'us-east/b/rack1',
  west: 'us-west/a/rack1',
  eu: 'eu-west/a/rack1',
} as const
type Place = keyof typeof places
const failing = new Set<string>()
const upstreams = new Map<string, Upstream>()

let proxy: ProxyProcess
let egress: number

/** Outlier detection that ejects an endpoint on its first 5xx, for long enough to outlast the test. */
const ejectOnFirst5xx =
  '{consecutive5xxErrors: 1, interval: 10s, baseEjectionTime: 60s, maxEjectionPercent: 100}'

/** A ServiceEntry `name` with one endpoint per place (each upstream `<name>-<place>`), and its DestinationRule. */
function service(
  name: string,
  members: Place[],
  trafficPolicy: string,
  labels: Record<string, string> = {},
): string {
  const endpoints = members.map((place) => {
    const upstream = upstreams.get(`${name}-${place}`) as Upstream
    const version = labels[place] === undefined ? '' : `, labels: {version: ${labels[place]}}`
    return `{address: 127.0.0.1, ports: {http: ${upstream.port}}, locality: ${places[place]}${version}}`
  })
  return serviceWithPolicy(name, endpoints, trafficPolicy)
}

const services: Record<string, { members: Place[]; policy: string; labels?: Record<string, string> }> = {
  failover: {
    members: ['eu', 'west', 'region', 'zone', 'local'],
    policy: `    outlierDetection: ${ejectOnFirst5xx}`,
  },
  'failover-rule': {
    members: ['local', 'west', 'eu'],
    policy: `    outlierDetection: ${ejectOnFirst5xx}
    loadBalancer:
      localityLbSetting:
        failover: [{from: us-east, to: eu-west}]`,
  },
  'failover-priority': {
    members: ['local', 'zone', 'west'],
    labels: { local: 'v2', zone: 'v1', west: 'v1' },
    policy: `    outlierDetection: ${ejectOnFirst5xx}
    loadBalancer:
      localityLbSetting:
        failoverPriority: [version, topology.kubernetes.io/region]`,
  },
  distribute: {
    members: ['local', 'zone', 'west'],
    policy: `    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        distribute: [{from: "us-east/a/*", to: {"us-east/a/rack1": 80, "us-west/*": 20}}]`,
  },
  disabled: {
    members: ['local', 'west'],
    policy: `    outlierDetection: ${ejectOnFirst5xx}
    loadBalancer: {simple: ROUND_ROBIN, localityLbSetting: {enabled: false}}`,
  },
  'no-outlier-detection': { members: ['local', 'west'], policy: '    loadBalancer: {simple: ROUND_ROBIN}' },
  // Outlier detection that never ejects here: the retries alone must leave the failing locality.
  'retry-remote': {
    members: ['local', 'west'],
    policy: '    outlierDetection: {consecutive5xxErrors: 1000}',
  },
  'retry-local': { members: ['local', 'west'], policy: '    outlierDetection: {consecutive5xxErrors: 1000}' },
}

/** A VirtualService retrying 5xx three times, with or without retryRemoteLocalities. */
function retries(host: string, remote: boolean): string {
  return virtualService({
    hosts: [host],
    http: [{ route: routeTo(host), retries: { attempts: 3, retryOn: '5xx', retryRemoteLocalities: remote } }],
  })
}

beforeAll(async () => {
  for (const [name, { members }] of Object.entries(services)) {
    for (const place of members) {
      const id = `${name}-${place}`
      const upstream = await startUpstream(id, (req, res) => {
        req.resume()
        const status = failing.has(id) ? 500 : 200
        res.writeHead(status, {
          'x-upstream': place,
          'x-attempt': String(req.headers['x-envoy-attempt-count']),
        })
        res.end(place)
      })
      upstreams.set(id, upstream)
    }
  }
  ;[egress] = await freePorts(1)
  proxy = await startProxy({
    locality: places.local,
    labels: { app: 'client', version: 'v1' },
    resources: {
      'sidecar.yaml': sidecar({ egress: [{ port: egress, protocol: 'HTTP' }] }),
      'services.yaml': Object.entries(services)
        .map(([name, s]) => service(name, s.members, s.policy, s.labels))
        .join('\n---\n'),
      'retries.yaml': `${retries('retry-remote', true)}---\n${retries('retry-local', false)}`,
    },
  })
})

afterAll(async () => {
  await proxy?.stop()
  await Promise.all([...upstreams.values()].map((u) => u.close()))
})

/** Which places `n` sequential requests to `host` reached (a 500 counts for the place that sent it). */
async function spread(host: string, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const reply = await send(egress, host)
    const place = String(reply.headers['x-upstream'] ?? `status ${reply.status}`)
    counts[place] = (counts[place] ?? 0) + 1
  }
  return counts
}

describe('locality failover (outlier detection set, Istio default locality settings)', () => {
  it('sends everything to the proxy’s own locality while it is healthy', async () => {
    expect(await spread('failover', 20)).toEqual({ local: 20 })
  })

  it('shows each endpoint’s locality and priority in /clusters', async () => {
    const text = await (await proxy.admin('/clusters')).text()
    const host = `outbound|80||failover.default.svc.cluster.local::127.0.0.1:${upstreams.get('failover-west')?.port}`
    expect(text).toContain(`${host}::region::us-west\n${host}::zone::a\n${host}::sub_zone::rack1\n`)
    expect(text).toContain(`${host}::priority::3\n`)
  })

  it('fails over zone by zone, then region, then to the other regions, as endpoints are ejected', async () => {
    for (const [down, next] of [
      ['local', 'zone'],
      ['zone', 'region'],
      ['region', 'other'],
    ] as const) {
      failing.add(`failover-${down}`)
      // The first request meets the failure and ejects the endpoint; the rest go one level down.
      expect((await send(egress, 'failover')).status).toBe(500)
      const counts = await spread('failover', 20)
      if (next === 'other') {
        expect(Object.keys(counts).sort()).toEqual(['eu', 'west'])
        expect((counts.eu ?? 0) + (counts.west ?? 0)).toBe(20)
      } else {
        expect(counts).toEqual({ [next]: 20 })
      }
    }
  })

  it('a failover rule sends traffic to its `to` region before any other region', async () => {
    expect(await spread('failover-rule', 10)).toEqual({ local: 10 })
    failing.add('failover-rule-local')
    expect((await send(egress, 'failover-rule')).status).toBe(500)
    expect(await spread('failover-rule', 20)).toEqual({ eu: 20 })
  })

  it('failoverPriority ranks endpoints by the proxy labels they share, in order', async () => {
    // version v1 like the proxy: zone (also same region) first, then west; local (v2) last.
    expect(await spread('failover-priority', 10)).toEqual({ zone: 10 })
    failing.add('failover-priority-zone')
    expect((await send(egress, 'failover-priority')).status).toBe(500)
    expect(await spread('failover-priority', 10)).toEqual({ west: 10 })
  })

  it('localityLbSetting.enabled false balances over every locality', async () => {
    expect(await spread('disabled', 20)).toEqual({ local: 10, west: 10 })
  })

  it('without outlier detection there is no failover ordering', async () => {
    expect(await spread('no-outlier-detection', 20)).toEqual({ local: 10, west: 10 })
  })
})

describe('locality weighted distribution', () => {
  it('splits traffic by the distribute weights and leaves unlisted localities out', async () => {
    const counts = await spread('distribute', 100)
    expect(counts).toEqual({ local: 80, west: 20 })
  })
})

describe('retryRemoteLocalities (Envoy previous_priorities, update frequency 2)', () => {
  it('the third try leaves the levels the first two tried', async () => {
    failing.add('retry-remote-local')
    const reply = await send(egress, 'retry-remote')
    expect(reply.status).toBe(200)
    expect(reply.headers['x-upstream']).toBe('west')
    expect(reply.headers['x-attempt']).toBe('3')
    expect(upstreams.get('retry-remote-local')?.seen).toHaveLength(2)
  })

  it('without it, every try stays in the local level and the retries run out', async () => {
    failing.add('retry-local-local')
    const reply = await send(egress, 'retry-local')
    expect(reply.status).toBe(500)
    expect(reply.headers['x-upstream']).toBe('local')
    expect(upstreams.get('retry-local-local')?.seen).toHaveLength(4)
    expect(upstreams.get('retry-local-west')?.seen).toHaveLength(0)
  })
})
