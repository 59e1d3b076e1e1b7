// Envoy's normalized host weights for the hash balancers: each endpoint's share of its level, summing to 1.

import type { LbEndpoint } from './load-balancer.ts'

/**
 * Envoy's normalizeHostWeights (source/extensions/load_balancing_policies/common/thread_aware_lb_impl.cc):
 * weight × localityShare / (sum of the endpoints' weights), computed in that order so the doubles,
 * and so the ring's point counts, are the same as Envoy's. `localityShare` is the locality's weight
 * over the sum of the level's locality weights, or 1 when localities are not weighted.
 */
export function normalizedWeights(
  endpoints: readonly LbEndpoint[],
  localityShare = 1,
  into: number[] = [],
): number[] {
  let sum = 0
  for (const e of endpoints) sum += e.weight
  for (const e of endpoints) into.push((e.weight * localityShare) / sum)
  return into
}
