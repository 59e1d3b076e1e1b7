// Smooth weighted round robin (nginx's algorithm): endpoints with weight w get w shares, evenly interleaved.

import type { UpstreamEndpoint } from '../upstream-endpoint.ts'
import type { LoadBalancer } from './load-balancer.ts'

export class WeightedRoundRobin implements LoadBalancer {
  readonly #weights: readonly number[]
  readonly #current: number[]
  readonly #total: number

  /** `weights[i]` belongs to the i-th endpoint of every list passed to `pick`. */
  constructor(weights: readonly number[]) {
    this.#weights = weights
    this.#current = weights.map(() => 0)
    this.#total = weights.reduce((sum, w) => sum + w, 0)
  }

  pick(endpoints: readonly UpstreamEndpoint[]): UpstreamEndpoint {
    let best = 0
    for (let i = 0; i < endpoints.length; i++) {
      this.#current[i] += this.#weights[i]
      if (this.#current[i] > this.#current[best]) best = i
    }
    this.#current[best] -= this.#total
    return endpoints[best]
  }
}
