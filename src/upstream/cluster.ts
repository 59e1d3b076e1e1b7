// A cluster at run time: its compiled model, its endpoints' pools and its load balancer.

import type { ClusterModel } from '../config/model.ts'
import type { LoadBalancer } from './lb/load-balancer.ts'
import { RoundRobin } from './lb/round-robin.ts'
import type { UpstreamEndpoint } from './upstream-endpoint.ts'

export class Cluster {
  readonly model: ClusterModel
  readonly endpoints: readonly UpstreamEndpoint[]
  readonly #lb: LoadBalancer

  constructor(
    model: ClusterModel,
    endpoints: readonly UpstreamEndpoint[],
    lb: LoadBalancer = new RoundRobin(),
  ) {
    this.model = model
    this.endpoints = endpoints
    this.#lb = lb
  }

  get name(): string {
    return this.model.name
  }

  /** The endpoint for the next request, or undefined when the cluster has none (503 UH). */
  pick(): UpstreamEndpoint | undefined {
    if (this.endpoints.length === 0) return undefined
    return this.#lb.pick(this.endpoints)
  }
}
