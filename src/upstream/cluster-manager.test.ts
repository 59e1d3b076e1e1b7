// Unit tests for the cluster manager across reloads: a request keeps the clusters of the model it started on.

import { afterEach, describe, expect, it } from 'vitest'
import { staticEndpoint } from '../config/compile/clusters.ts'
import { defaultClusterPolicy } from '../config/compile/traffic-policy.ts'
import type { ClusterModel, Model } from '../config/model.ts'
import { ClusterManager } from './cluster-manager.ts'

function clusterModel(host: string): ClusterModel {
  return {
    name: `outbound|80||${host}`,
    direction: 'outbound',
    host,
    port: 80,
    subset: '',
    protocol: 'HTTP',
    endpoints: [staticEndpoint('127.0.0.1', 1)],
    connectTimeoutMs: 1000,
    policy: defaultClusterPolicy,
  }
}

/** A model holding only clusters: all the cluster manager reads of one. */
function modelOf(...hosts: string[]): Model {
  return { clusters: new Map(hosts.map((h) => [`outbound|80||${h}`, clusterModel(h)])) } as unknown as Model
}

const managers: ClusterManager[] = []
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()))
})

function manager(): ClusterManager {
  const m = new ClusterManager()
  managers.push(m)
  return m
}

describe('ClusterManager.forModel', () => {
  it('finds a cluster a reload removed for a request of the older model, never for one of the newer', () => {
    const clusters = manager()
    const old = modelOf('a', 'b')
    clusters.update(old, 60_000)
    const a = clusters.forModel(old, 'outbound|80||a')
    expect(a).toBeDefined()
    const next = modelOf('b', 'c')
    clusters.update(next, 60_000)
    expect(clusters.get('outbound|80||a')).toBeUndefined()
    expect(clusters.forModel(next, 'outbound|80||a')).toBeUndefined()
    // The same run-time cluster (pools, breakers), not a copy.
    expect(clusters.forModel(old, 'outbound|80||a')).toBe(a)
    // A cluster the old model had but never built is built from the old model's definition.
    expect(clusters.forModel(old, 'outbound|80||b')).toBe(clusters.get('outbound|80||b'))
    // A newer model's cluster does not exist for a request of the older one.
    expect(clusters.forModel(old, 'outbound|80||c')).toBeUndefined()
  })

  it('builds a removed cluster that was never used from the older model', () => {
    const clusters = manager()
    const old = modelOf('a')
    clusters.update(old, 60_000)
    clusters.update(modelOf(), 60_000)
    expect(clusters.forModel(old, 'outbound|80||a')?.model.host).toBe('a')
  })

  it('lets a retired cluster go after the retire time', async () => {
    const clusters = manager()
    const old = modelOf('a')
    clusters.update(old, 50)
    const a = clusters.forModel(old, 'outbound|80||a')
    clusters.update(modelOf(), 50)
    expect(clusters.forModel(old, 'outbound|80||a')).toBe(a)
    await new Promise((r) => setTimeout(r, 120))
    const rebuilt = clusters.forModel(old, 'outbound|80||a')
    expect(rebuilt).toBeDefined()
    expect(rebuilt).not.toBe(a)
  })
})
