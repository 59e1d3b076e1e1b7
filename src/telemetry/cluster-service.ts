// The service host a cluster name carries (Istio names clusters `direction|port|subset|host`).

/** The last `|`-separated part of a cluster name: the service host of `outbound|9080||reviews…`, '' for `inbound|9080||`. */
export function clusterService(clusterName: string): string {
  return clusterName.slice(clusterName.lastIndexOf('|') + 1)
}
