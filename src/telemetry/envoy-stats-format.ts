// Envoy's admin /stats output for a list of stats: `name: value` lines, `?format=json`, `?filter=` (RE2), `?usedonly`, and the Prometheus text.

import { compileRe2 } from '../protocol/re2.ts'
import { type EnvoyStat, tagStat } from './envoy-stat-tags.ts'

export interface StatsQuery {
  /** `filter=`: an RE2 regex a stat's name must contain a match of (Envoy's partial match). */
  readonly filter?: string
  /** `usedonly`: counters and gauges never written are left out; here, those still 0. */
  readonly usedOnly?: boolean
}

/** The filter's problem as Envoy's admin words it, or undefined when it compiles (or there is none). */
export function statsFilterProblem(filter: string | undefined): string | undefined {
  if (filter === undefined) return undefined
  try {
    compileRe2(filter)
    return undefined
  } catch (error) {
    return `Invalid re2 regex: ${(error as Error).message}`
  }
}

/** The stats a query selects, sorted by name as Envoy's /stats lists them. */
export function selectStats(stats: readonly EnvoyStat[], query: StatsQuery): EnvoyStat[] {
  const regex = query.filter === undefined ? undefined : compileRe2(query.filter)
  return stats
    .filter(
      (s) =>
        (query.usedOnly !== true || s.value !== 0) && (regex === undefined || regex.matcher(s.name).find()),
    )
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}

/** Envoy's text form: one `name: value` line per stat. */
export function statsText(stats: readonly EnvoyStat[]): string {
  let out = ''
  for (const s of stats) out += `${s.name}: ${s.value}\n`
  return out
}

/** Envoy's `?format=json`: `{"stats":[{"name":…,"value":…}]}`. */
export function statsJson(stats: readonly EnvoyStat[]): string {
  return JSON.stringify({ stats: stats.map((s) => ({ name: s.name, value: s.value })) }, null, 2)
}

/**
 * The Prometheus text exposition: each metric once with its `# TYPE`, then its samples with the
 * extracted tags as labels; metrics sorted by name, as Envoy's /stats/prometheus writes them.
 */
export function statsPrometheus(stats: readonly EnvoyStat[]): string {
  const metrics = new Map<string, { type: EnvoyStat['type']; samples: string[] }>()
  for (const s of stats) {
    const { metric, labels } = tagStat(s.name)
    let entry = metrics.get(metric)
    if (entry === undefined) {
      entry = { type: s.type, samples: [] }
      metrics.set(metric, entry)
    }
    const labelText = labels.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(',')
    entry.samples.push(`${metric}{${labelText}} ${s.value}`)
  }
  let out = ''
  for (const name of [...metrics.keys()].sort()) {
    const entry = metrics.get(name) as { type: EnvoyStat['type']; samples: string[] }
    out += `# TYPE ${name} ${entry.type}\n${entry.samples.join('\n')}\n`
  }
  return out
}

/** Prometheus label escaping: backslash, double quote and newline. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')
}
