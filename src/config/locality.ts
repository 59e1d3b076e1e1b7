// Localities (`region/zone/subzone`): their topology labels and Istio's matching and priority rules.

/** The labels Istio gives every endpoint and proxy from its locality. */
export const REGION_LABEL = 'topology.kubernetes.io/region'
export const ZONE_LABEL = 'topology.kubernetes.io/zone'
export const SUBZONE_LABEL = 'topology.istio.io/subzone'
export const TOPOLOGY_LABELS: readonly string[] = [REGION_LABEL, ZONE_LABEL, SUBZONE_LABEL]
/** Istio's `istio-locality` label: the locality with `.` for `/` (a label value cannot hold `/`). */
const LOCALITY_LABEL = 'istio-locality'

/** `region/zone/subzone` split into its parts (missing parts are empty). */
export function splitLocality(locality: string): [string, string, string] {
  const [region = '', zone = '', subzone = ''] = locality.split('/', 3)
  return [region, zone, subzone]
}

/** An endpoint's locality when its WorkloadEntry names none: the `istio-locality` label, if any. */
export function localityFromLabels(labels: Readonly<Record<string, string>>): string {
  return labels[LOCALITY_LABEL]?.replaceAll('.', '/') ?? ''
}

/** Istio's AugmentLabels for locality: the topology labels of each known part, over the given labels. */
export function withLocalityLabels(
  labels: Readonly<Record<string, string>>,
  locality: string,
): Readonly<Record<string, string>> {
  if (locality === '') return labels
  const [region, zone, subzone] = splitLocality(locality)
  const out: Record<string, string> = { ...labels }
  if (region !== '') out[REGION_LABEL] = region
  if (zone !== '') out[ZONE_LABEL] = zone
  if (subzone !== '') out[SUBZONE_LABEL] = subzone
  return out
}

/** Istio's LocalityMatch: `*` matches any part, and a pattern's missing zone or subzone matches any. */
export function localityMatches(locality: string, pattern: string): boolean {
  const [region, zone, subzone] = splitLocality(locality)
  const [wantRegion, wantZone, wantSubzone] = splitLocality(pattern)
  return (
    (wantRegion === '*' || wantRegion === region) &&
    (wantZone === '*' || wantZone === '' || wantZone === zone) &&
    (wantSubzone === '*' || wantSubzone === '' || wantSubzone === subzone)
  )
}

/**
 * Istio's LbPriority: 0 when region, zone and subzone all equal the proxy's, 1 when region and zone
 * do, 2 when only the region does, 3 otherwise.
 */
export function localityPriority(proxy: string, endpoint: string): number {
  const [region, zone, subzone] = splitLocality(proxy)
  const [otherRegion, otherZone, otherSubzone] = splitLocality(endpoint)
  if (region !== otherRegion) return 3
  if (zone !== otherZone) return 2
  return subzone === otherSubzone ? 0 : 1
}
