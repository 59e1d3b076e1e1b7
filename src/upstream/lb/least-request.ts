// Least-request load balancing: Envoy's power of two choices on requests in flight.

import type { LbEndpoint, LoadBalancer, Random } from './load-balancer.ts'

/**
 * With equal weights, Envoy samples two endpoints at random (with replacement) and takes the one with
 * fewer active requests. With unequal weights it schedules by weight / (active + 1) (EDF); here an
 * endpoint is drawn at random in proportion to weight / (active + 1), which gives the same shares:
 * weight-proportional when idle, away from busy endpoints under load. That pass is O(endpoints).
 */
export class LeastRequest implements LoadBalancer {
  readonly #random: Random
  #list: readonly LbEndpoint[] = []
  #weighted = false

  constructor(random: Random = Math.random) {
    this.#random = random
  }

  update(endpoints: readonly LbEndpoint[]): void {
    this.#list = endpoints
    this.#weighted = endpoints.some((e) => e.weight !== endpoints[0].weight)
  }

  pick<E extends LbEndpoint>(endpoints: readonly E[]): E {
    const n = endpoints.length
    if (n === 1) return endpoints[0]
    if (endpoints !== this.#list) this.update(endpoints)
    if (this.#weighted) return this.#pickWeighted(endpoints)
    const a = endpoints[Math.floor(this.#random() * n)]
    const b = endpoints[Math.floor(this.#random() * n)]
    return b.activeRequests < a.activeRequests ? b : a
  }

  #pickWeighted<E extends LbEndpoint>(endpoints: readonly E[]): E {
    let total = 0
    for (const e of endpoints) total += e.weight / (e.activeRequests + 1)
    let target = this.#random() * total
    for (const e of endpoints) {
      target -= e.weight / (e.activeRequests + 1)
      if (target < 0) return e
    }
    return endpoints[endpoints.length - 1]
  }
}
