// Owns every cluster; a new Model re-applies clusters that stay and closes those that leave.

import type { ClusterModel, Model } from '../config/model.ts'
import { Cluster } from './cluster.ts'
import { SharedCounters } from './shared-counters.ts'

/**
 * A cluster's run-time object (endpoints, pools, load balancer, breakers) is built when it is first
 * asked for: a mesh of thousands of services keeps only the compiled models of those no request used.
 */
export class ClusterManager {
  /** Circuit breakers, host counters and outlier state of every cluster: shared by all worker threads. */
  readonly counters: SharedCounters
  #models: ReadonlyMap<string, ClusterModel> = new Map()
  #clusters = new Map<string, Cluster>()

  /** `counters`: the proxy's table (created by the main thread); a one-thread table by default. */
  constructor(counters: SharedCounters = SharedCounters.create(undefined, false)) {
    this.counters = counters
  }

  get(name: string): Cluster | undefined {
    return this.#clusters.get(name) ?? this.#materialize(name)
  }

  /** Every cluster of the model, in model order. */
  get clusters(): Iterable<Cluster> {
    const all: Cluster[] = []
    for (const name of this.#models.keys()) {
      const cluster = this.get(name)
      if (cluster !== undefined) all.push(cluster)
    }
    return all
  }

  /** Applies a new model: a cluster keeps its pools, counters and outlier state while its name stays. */
  update(model: Model): void {
    const clusters = new Map<string, Cluster>()
    for (const [name, cluster] of this.#clusters) {
      const cm = model.clusters.get(name)
      if (cm === undefined) {
        void cluster.close()
        continue
      }
      cluster.apply(cm)
      clusters.set(name, cluster)
    }
    // Slow start ramps up endpoints added to a running cluster: one with warmup is built from the
    // model it had, so the endpoints this model adds still warm up.
    for (const [name, cm] of model.clusters) {
      const previous = this.#models.get(name)
      if (cm.policy.warmup === undefined || previous === undefined || clusters.has(name)) continue
      const cluster = new Cluster(previous, this.counters)
      cluster.apply(cm)
      clusters.set(name, cluster)
    }
    this.#models = model.clusters
    this.#clusters = clusters
  }

  async close(): Promise<void> {
    const all = [...this.#clusters.values()]
    this.#models = new Map()
    this.#clusters.clear()
    await Promise.all(all.map((c) => c.close()))
  }

  #materialize(name: string): Cluster | undefined {
    const model = this.#models.get(name)
    if (model === undefined) return undefined
    const cluster = new Cluster(model, this.counters)
    this.#clusters.set(name, cluster)
    return cluster
  }
}
