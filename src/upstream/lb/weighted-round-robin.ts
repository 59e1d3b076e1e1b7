// Smooth weighted round robin (nginx's algorithm): endpoints with weight w get w shares, evenly interleaved.

import type { LbEndpoint, LoadBalancer } from './load-balancer.ts'

export class WeightedRoundRobin implements LoadBalancer {
  #list: readonly LbEndpoint[] = []
  #current: number[] = []
  #total = 0

  /** A new list (ejections change it) starts a new cycle over the endpoints it holds. */
  update(endpoints: readonly LbEndpoint[]): void {
    this.#list = endpoints
    this.#current = endpoints.map(() => 0)
    this.#total = endpoints.reduce((sum, e) => sum + e.weight, 0)
  }

  pick<E extends LbEndpoint>(endpoints: readonly E[]): E {
    if (endpoints !== this.#list) this.update(endpoints)
    const current = this.#current
    let best = 0
    for (let i = 0; i < endpoints.length; i++) {
      current[i] += endpoints[i].weight
      if (current[i] > current[best]) best = i
    }
    current[best] -= this.#total
    return endpoints[best]
  }
}
