// The service host a cluster name carries (Istio names clusters `direction|port|subset|host`).

/** The last cluster name asked about and its service: requests in a row mostly go to one cluster. */
let lastClusterName = ''
let lastService = ''

/** The last `|`-separated part of a cluster name: the service host of `outbound|9080||reviews…`, '' for `inbound|9080||`. */
export function clusterService(clusterName: string): string {
  // The same string each time for the same cluster: no copy per request, and equal by reference.
  if (clusterName === lastClusterName) return lastService
  lastService = clusterName.slice(clusterName.lastIndexOf('|') + 1)
  lastClusterName = clusterName
  return lastService
}
