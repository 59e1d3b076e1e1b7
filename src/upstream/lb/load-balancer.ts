// The interface every load-balancing policy implements: pick one endpoint from a cluster's available list.

import type { LbRequest } from './hash-policy.ts'

/** What a load balancer reads from an endpoint. */
export interface LbEndpoint {
  /** `address:port`; consistent-hash rings are built from it, as Envoy builds them from the address. */
  readonly hostPort: string
  readonly weight: number
  /** Requests in flight (least-request). */
  readonly activeRequests: number
}

/** A source of uniform numbers in [0, 1); tests inject a seeded one. */
export type Random = () => number

export interface LoadBalancer {
  /**
   * Called with the new list whenever the available endpoints change (config load, ejection,
   * unejection): policies that precompute (rings, tables, weights) do it here, never per request.
   * `weights`, when given, replace the endpoints' own weights (hash rings weighted by locality).
   */
  update?(endpoints: readonly LbEndpoint[], weights?: readonly number[]): void
  /** An endpoint from a non-empty list: the cluster's available endpoints. */
  pick<E extends LbEndpoint>(endpoints: readonly E[], request: LbRequest): E
}
