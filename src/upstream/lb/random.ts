// Random load balancing: a uniformly random available endpoint, as Envoy's RANDOM (weights are not used).

import type { LbEndpoint, LoadBalancer, Random } from './load-balancer.ts'

export class RandomLb implements LoadBalancer {
  readonly #random: Random

  constructor(random: Random = Math.random) {
    this.#random = random
  }

  pick<E extends LbEndpoint>(endpoints: readonly E[]): E {
    return endpoints[Math.floor(this.#random() * endpoints.length)]
  }
}
