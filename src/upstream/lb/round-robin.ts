// Round-robin load balancing, Istio's default (Envoy starts each worker at a random offset).

import type { UpstreamEndpoint } from '../upstream-endpoint.ts'
import type { LoadBalancer } from './load-balancer.ts'

export class RoundRobin implements LoadBalancer {
  #next: number

  constructor(start = Math.floor(Math.random() * 1024)) {
    this.#next = start
  }

  pick(endpoints: readonly UpstreamEndpoint[]): UpstreamEndpoint {
    const i = this.#next++ % endpoints.length
    if (this.#next >= 0x3fffffff) this.#next = 0
    return endpoints[i]
  }
}
