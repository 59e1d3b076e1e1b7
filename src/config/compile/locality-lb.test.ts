import { describe, expect, it } from 'vitest'
import type { LocalityLbSetting } from '../istio/locality-lb-setting.ts'
import { withLocalityLabels } from '../locality.ts'
import type { NodeIdentity } from '../model.ts'
import { applyLocalityLb, type EndpointDraft } from './locality-lb.ts'

const node: NodeIdentity = {
  workload: 'client',
  namespace: 'default',
  serviceAccount: 'default',
  labels: { app: 'client' },
  cluster: 'Kubernetes',
  trustDomain: 'cluster.local',
  locality: 'us-east/a/rack1',
}

function endpoint(
  address: string,
  locality: string,
  labels: Record<string, string> = {},
  weight = 1,
): EndpointDraft {
  return { address, port: 80, labels: withLocalityLabels(labels, locality), weight, locality }
}

function setting(partial: Partial<LocalityLbSetting>): LocalityLbSetting {
  return { distribute: [], failover: [], failoverPriority: [], ...partial }
}

/** address → priority (and locality weight) of the result. */
function summary(endpoints: ReturnType<typeof applyLocalityLb>) {
  return Object.fromEntries(endpoints.map((e) => [e.address, [e.priority, e.localityWeight]]))
}

const mesh = [
  endpoint('same', 'us-east/a/rack1'),
  endpoint('zone', 'us-east/a/rack2'),
  endpoint('region', 'us-east/b/rack1'),
  endpoint('west', 'us-west/a/rack1'),
  endpoint('eu', 'eu-west/a/rack1'),
]

describe('locality load balancing (Istio ApplyLocalityLoadBalancer)', () => {
  it('with outlier detection, orders localities by how much they share with the proxy', () => {
    expect(summary(applyLocalityLb(mesh, undefined, true, node))).toEqual({
      same: [0, 1],
      zone: [1, 1],
      region: [2, 1],
      west: [3, 1],
      eu: [3, 1],
    })
  })

  it('without outlier detection, or when disabled, keeps every endpoint at priority 0', () => {
    for (const result of [
      applyLocalityLb(mesh, undefined, false, node),
      applyLocalityLb(mesh, setting({ enabled: false }), true, node),
    ]) {
      expect(result.map((e) => e.priority)).toEqual([0, 0, 0, 0, 0])
    }
  })

  it('numbers priorities without gaps when some levels are empty', () => {
    const result = applyLocalityLb([mesh[0], mesh[3]], undefined, true, node)
    expect(summary(result)).toEqual({ same: [0, 1], west: [1, 1] })
  })

  it('a failover rule from the proxy region puts its `to` region before the other regions', () => {
    const result = applyLocalityLb(
      mesh,
      setting({ failover: [{ from: 'us-east', to: 'eu-west' }] }),
      true,
      node,
    )
    expect(summary(result)).toEqual({ same: [0, 1], zone: [1, 1], region: [2, 1], eu: [3, 1], west: [4, 1] })
  })

  it('failoverPriority: priority is the number of trailing labels not shared with the proxy', () => {
    const labelled = [
      endpoint('both', '', { app: 'client', version: 'v1' }),
      endpoint('app-only', '', { app: 'client', version: 'v2' }),
      endpoint('none', '', { app: 'other', version: 'v1' }),
    ]
    const proxy = { ...node, labels: { app: 'client', version: 'v1' } }
    const result = applyLocalityLb(labelled, setting({ failoverPriority: ['app', 'version'] }), true, proxy)
    expect(summary(result)).toEqual({ both: [0, 1], 'app-only': [1, 1], none: [2, 1] })
  })

  it('failoverPriority compares `key=value` entries with that value, and reads topology labels from localities', () => {
    const result = applyLocalityLb(
      mesh,
      setting({ failoverPriority: ['topology.kubernetes.io/region=us-west', 'topology.kubernetes.io/zone'] }),
      true,
      node,
    )
    // west matches both (its zone `a` equals the proxy's); the others miss the first label.
    expect(summary(result)).toEqual({ west: [0, 1], same: [1, 1], zone: [1, 1], region: [1, 1], eu: [1, 1] })
  })

  it('failoverPriority with failover: label levels first, locality levels within them', () => {
    const labelled = [
      endpoint('v1-local', 'us-east/a/rack1', { version: 'v1' }),
      endpoint('v1-far', 'us-west/a/rack1', { version: 'v1' }),
      endpoint('v2-local', 'us-east/a/rack1', { version: 'v2' }),
    ]
    const proxy = { ...node, labels: { version: 'v1' } }
    const result = applyLocalityLb(
      labelled,
      setting({ failoverPriority: ['version'], failover: [{ from: 'us-east', to: 'us-west' }] }),
      true,
      proxy,
    )
    expect(summary(result)).toEqual({ 'v1-local': [0, 1], 'v1-far': [1, 1], 'v2-local': [2, 1] })
  })

  it('distribute: weights per locality, split over the localities a pattern matches, others dropped', () => {
    const endpoints = [
      endpoint('a1', 'us-east/a/rack1'),
      endpoint('a2', 'us-east/a/rack1'),
      endpoint('b1', 'us-east/b/rack1'),
      endpoint('w1', 'us-west/a/rack1'),
      endpoint('w2', 'us-west/b/rack1', {}, 3),
      endpoint('eu', 'eu-west/a/rack1'),
    ]
    const result = applyLocalityLb(
      endpoints,
      setting({
        distribute: [
          { from: 'eu-west/*', to: { 'eu-west/*': 100 } },
          { from: 'us-east/a/*', to: { 'us-east/a/*': 60, 'us-east/b/*': 10, 'us-west/*': 30 } },
        ],
      }),
      false,
      node,
    )
    // us-west's 30 is split 1:3 by the two localities' own weights, rounded up.
    expect(summary(result)).toEqual({
      a1: [0, 60],
      a2: [0, 60],
      b1: [0, 10],
      w1: [0, 8],
      w2: [0, 23],
    })
  })

  it('distribute with no rule from the proxy locality changes nothing', () => {
    const result = applyLocalityLb(
      mesh,
      setting({ distribute: [{ from: 'ap-south/*', to: { '*': 100 } }] }),
      true,
      node,
    )
    expect(result.map((e) => [e.priority, e.localityWeight])).toEqual(mesh.map(() => [0, 1]))
  })
})
