// The interface every load-balancing policy implements: pick one endpoint from a cluster's list.

import type { UpstreamEndpoint } from '../upstream-endpoint.ts'

export interface LoadBalancer {
  /** An endpoint from a non-empty list. */
  pick(endpoints: readonly UpstreamEndpoint[]): UpstreamEndpoint
}
