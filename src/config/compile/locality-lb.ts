// localityLbSetting ──► each endpoint's priority and locality weight, as Istio's ApplyLocalityLoadBalancer computes them.

import type { LocalityLbSetting } from '../istio/locality-lb-setting.ts'
import { localityMatches, localityPriority, withLocalityLabels } from '../locality.ts'
import type { EndpointModel, NodeIdentity } from '../model.ts'

/** An endpoint before locality load balancing is applied. */
export type EndpointDraft = Omit<EndpointModel, 'priority' | 'localityWeight'>

/** Envoy's LocalityLbEndpoints: the endpoints of one locality at one priority, with the locality's weight. */
interface LocalityGroup {
  readonly locality: string
  endpoints: EndpointDraft[]
  weight: number
  priority: number
}

/**
 * Istio's rules: `enabled: false` turns locality load balancing off; `distribute` reweighs localities
 * (and drops the ones it does not list) whether or not outlier detection is set; failover priorities
 * (by locality, `failover` regions, or `failoverPriority` labels) apply only with outlier detection,
 * since without it no endpoint is ever unhealthy and lower priorities would never be used. With no
 * DestinationRule setting, the mesh default (enabled, no rules) gives locality failover.
 */
export function applyLocalityLb(
  endpoints: readonly EndpointDraft[],
  setting: LocalityLbSetting | undefined,
  outlierDetection: boolean,
  node: NodeIdentity,
): EndpointModel[] {
  let groups = groupByLocality(endpoints)
  if (setting?.enabled !== false) {
    if (setting !== undefined && setting.distribute.length > 0) {
      groups = applyLocalityWeights(groups, setting.distribute, node.locality)
    } else if (outlierDetection) {
      const failover = setting?.failover ?? []
      const failoverPriority = setting?.failoverPriority ?? []
      if (failoverPriority.length > 0) {
        groups = applyFailoverPriorities(groups, failoverPriority, node)
        if (failover.length > 0) applyLocalityFailover(groups, failover, node.locality)
      } else {
        applyLocalityFailover(groups, failover, node.locality)
      }
    }
  }
  const out: EndpointModel[] = []
  for (const group of groups) {
    for (const e of group.endpoints)
      out.push({ ...e, priority: group.priority, localityWeight: group.weight })
  }
  // Exact size: push leaves spare capacity, kept by every cluster of a big mesh.
  return out.slice()
}

function groupByLocality(endpoints: readonly EndpointDraft[]): LocalityGroup[] {
  const groups = new Map<string, LocalityGroup>()
  for (const e of endpoints) {
    const group = groups.get(e.locality)
    if (group === undefined) {
      groups.set(e.locality, { locality: e.locality, endpoints: [e], weight: e.weight, priority: 0 })
    } else {
      group.endpoints.push(e)
      group.weight += e.weight
    }
  }
  return [...groups.values()]
}

/**
 * Istio's applyLocalityWeights: the first rule whose `from` matches the proxy's locality gives each
 * `to` pattern its weight, split over the localities it matches in proportion to their own weights
 * (rounded up); localities no pattern matches get no traffic.
 */
function applyLocalityWeights(
  groups: LocalityGroup[],
  distribute: LocalityLbSetting['distribute'],
  proxyLocality: string,
): LocalityGroup[] {
  const rule = distribute.find((d) => localityMatches(proxyLocality, d.from))
  if (rule === undefined) return groups
  const unmatched = new Set(groups)
  for (const [pattern, weight] of Object.entries(rule.to)) {
    const matched = [...unmatched].filter((g) => localityMatches(g.locality, pattern))
    const total = matched.reduce((sum, g) => sum + g.weight, 0)
    for (const group of matched) {
      unmatched.delete(group)
      const share = (group.weight * weight) / total
      if (share > 0) group.weight = Math.ceil(share)
    }
  }
  return groups.filter((g) => !unmatched.has(g))
}

/**
 * Istio's applyLocalityFailover: priority by how much of the proxy's locality an endpoint shares
 * (0 all, 1 region and zone, 2 region, 3 none); with a `failover` rule from the proxy's region, other
 * regions than its `to` drop to 4. Levels set by failoverPriority before are kept (×5), then the
 * levels are renumbered without gaps.
 */
function applyLocalityFailover(
  groups: LocalityGroup[],
  failover: LocalityLbSetting['failover'],
  proxyLocality: string,
): void {
  const proxyRegion = proxyLocality.split('/')[0]
  for (const group of groups) {
    let priority = localityPriority(proxyLocality, group.locality)
    if (priority === 3) {
      const rule = failover.find((f) => f.from === proxyRegion)
      if (rule !== undefined && group.locality.split('/')[0] !== rule.to) priority = 4
    }
    group.priority = group.priority * 5 + priority
  }
  renumber(groups)
}

/**
 * Istio's applyFailoverPriorities: an endpoint's priority is the number of trailing labels it does not
 * share with the proxy (all shared: 0); `key=value` compares with that value instead of the proxy's.
 * Each locality's endpoints are split by priority, and the levels renumbered without gaps. Without
 * proxy labels nothing changes, as in Istio.
 */
function applyFailoverPriorities(
  groups: LocalityGroup[],
  failoverPriority: readonly string[],
  node: NodeIdentity,
): LocalityGroup[] {
  const proxyLabels = withLocalityLabels(node.labels, node.locality)
  if (Object.keys(proxyLabels).length === 0) return groups
  const labels = failoverPriority.map((entry) => {
    const [name, value] = entry.split('=')
    return { name, value: entry.includes('=') ? value : (proxyLabels[name] ?? '') }
  })
  const out: LocalityGroup[] = []
  for (const group of groups) {
    const byPriority = new Map<number, LocalityGroup>()
    for (const e of group.endpoints) {
      const mismatch = labels.findIndex((label) => (e.labels[label.name] ?? '') !== label.value)
      const priority = mismatch === -1 ? 0 : labels.length - mismatch
      const split = byPriority.get(priority)
      if (split === undefined) {
        byPriority.set(priority, { locality: group.locality, endpoints: [e], weight: e.weight, priority })
      } else {
        split.endpoints.push(e)
        split.weight += e.weight
      }
    }
    out.push(...[...byPriority.values()].sort((a, b) => a.priority - b.priority))
  }
  renumber(out)
  return out
}

/** Priorities 0..N without gaps, keeping their order. */
function renumber(groups: LocalityGroup[]): void {
  const levels = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b)
  for (const group of groups) group.priority = levels.indexOf(group.priority)
}
