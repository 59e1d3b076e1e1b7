// Owns every cluster and endpoint pool; a new Model swaps the clusters and keeps pools that are still used.

import type { ClusterModel, Model } from '../config/model.ts'
import { Cluster } from './cluster.ts'
import { RoundRobin } from './lb/round-robin.ts'
import { WeightedRoundRobin } from './lb/weighted-round-robin.ts'
import { UpstreamEndpoint } from './upstream-endpoint.ts'

function poolKey(address: string, port: number, connectTimeoutMs: number): string {
  return `${address}|${port}|${connectTimeoutMs}`
}

export class ClusterManager {
  #clusters = new Map<string, Cluster>()
  #endpoints = new Map<string, UpstreamEndpoint>()

  get(name: string): Cluster | undefined {
    return this.#clusters.get(name)
  }

  get clusters(): Iterable<Cluster> {
    return this.#clusters.values()
  }

  /** Builds the clusters of a new model; pools for addresses no longer used close after their requests. */
  update(model: Model): void {
    const clusters = new Map<string, Cluster>()
    const endpoints = new Map<string, UpstreamEndpoint>()
    for (const cm of model.clusters.values()) {
      clusters.set(cm.name, this.#build(cm, endpoints))
    }
    for (const [key, endpoint] of this.#endpoints) {
      if (!endpoints.has(key)) void endpoint.close()
    }
    this.#clusters = clusters
    this.#endpoints = endpoints
  }

  #build(cm: ClusterModel, endpoints: Map<string, UpstreamEndpoint>): Cluster {
    const list: UpstreamEndpoint[] = []
    for (const e of cm.endpoints) {
      const key = poolKey(e.address, e.port, cm.connectTimeoutMs)
      let endpoint = endpoints.get(key) ?? this.#endpoints.get(key)
      if (endpoint === undefined) {
        endpoint = new UpstreamEndpoint(e.address, e.port, { connectTimeoutMs: cm.connectTimeoutMs })
      }
      endpoints.set(key, endpoint)
      list.push(endpoint)
    }
    const weights = cm.endpoints.map((e) => e.weight)
    const weighted = weights.some((w) => w !== weights[0])
    return new Cluster(cm, list, weighted ? new WeightedRoundRobin(weights) : new RoundRobin())
  }

  async close(): Promise<void> {
    const all = [...this.#endpoints.values()]
    this.#endpoints.clear()
    this.#clusters.clear()
    await Promise.all(all.map((e) => e.close()))
  }
}
