// Owns every cluster; a new Model re-applies clusters that stay and closes those that leave.

import type { Model } from '../config/model.ts'
import { Cluster } from './cluster.ts'

export class ClusterManager {
  #clusters = new Map<string, Cluster>()

  get(name: string): Cluster | undefined {
    return this.#clusters.get(name)
  }

  get clusters(): Iterable<Cluster> {
    return this.#clusters.values()
  }

  /** Applies a new model: a cluster keeps its pools, counters and outlier state while its name stays. */
  update(model: Model): void {
    const clusters = new Map<string, Cluster>()
    for (const cm of model.clusters.values()) {
      const existing = this.#clusters.get(cm.name)
      if (existing === undefined) clusters.set(cm.name, new Cluster(cm))
      else {
        existing.apply(cm)
        clusters.set(cm.name, existing)
      }
    }
    for (const [name, cluster] of this.#clusters) {
      if (!clusters.has(name)) void cluster.close()
    }
    this.#clusters = clusters
  }

  async close(): Promise<void> {
    const all = [...this.#clusters.values()]
    this.#clusters.clear()
    await Promise.all(all.map((c) => c.close()))
  }
}
