// Builds a cluster's load balancer from its compiled LoadBalancerModel.

import type { LoadBalancerModel } from '../../config/model.ts'
import { LeastRequest } from './least-request.ts'
import type { LbEndpoint, LoadBalancer } from './load-balancer.ts'
import { Maglev } from './maglev.ts'
import { RandomLb } from './random.ts'
import { RingHash } from './ring-hash.ts'
import { RoundRobin } from './round-robin.ts'
import { WeightedRoundRobin } from './weighted-round-robin.ts'

/**
 * ROUND_ROBIN is weighted (smooth WRR) only when the endpoints' weights differ, or when `weighted`
 * says they will (slow start changes weights over time).
 */
export function createLoadBalancer(
  model: LoadBalancerModel,
  endpoints: readonly LbEndpoint[],
  weighted = false,
): LoadBalancer {
  switch (model.kind) {
    case 'ROUND_ROBIN':
      return weighted || endpoints.some((e) => e.weight !== endpoints[0].weight)
        ? new WeightedRoundRobin()
        : new RoundRobin()
    case 'LEAST_REQUEST':
      return new LeastRequest()
    case 'RANDOM':
      return new RandomLb()
    case 'RING_HASH':
      return new RingHash(model.hashKey, model.minimumRingSize)
    case 'MAGLEV':
      return new Maglev(model.hashKey, model.tableSize)
  }
}
