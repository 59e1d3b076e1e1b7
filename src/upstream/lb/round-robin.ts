// Round-robin load balancing (Envoy starts each worker at a random offset).

import type { LbEndpoint, LoadBalancer } from './load-balancer.ts'

export class RoundRobin implements LoadBalancer {
  #next: number

  constructor(start = Math.floor(Math.random() * 1024)) {
    this.#next = start
  }

  pick<E extends LbEndpoint>(endpoints: readonly E[]): E {
    const i = this.#next++ % endpoints.length
    if (this.#next >= 0x3fffffff) this.#next = 0
    return endpoints[i]
  }
}
