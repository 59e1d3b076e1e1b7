// Istio's tag extraction for Envoy stat names: which part of `cluster.<name>.upstream_rq_200` becomes a Prometheus label, and the metric name that is left.

/** An Envoy stat as the proxy reports it: its full dotted name, its value, and counter or gauge. */
export interface EnvoyStat {
  readonly name: string
  readonly value: number
  readonly type: 'counter' | 'gauge'
}

/**
 * The tag rules of Istio's sidecar bootstrap (tools/packaging/common/envoy_bootstrap.json
 * `stats_config.stats_tags`, with `use_all_default_tags: false`), in its order. As in Envoy's
 * TagExtractorImpl, the first capture group is cut out of the name and the second is the tag's value.
 * `[:digit:]` is written `\d`. These are fixed patterns, never a user's: plain RegExp is safe here.
 */
const istioTagRules: readonly (readonly [tag: string, regex: RegExp])[] = [
  ['cluster_name', /^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)/],
  ['tcp_prefix', /^tcp\.((.*?)\.)\w+?$/],
  ['response_code', /_rq(_(\d{3}))$/],
  ['response_code_class', /_rq(_(\dxx))$/],
  ['http_conn_manager_listener_prefix', /^listener(?=\.).*?\.http\.(((?:[_.\d]*|[_[\]aAbBcCdDeEfF\d]*))\.)/],
  ['http_conn_manager_prefix', /^http\.(((?:[_.\d]*|[_[\]aAbBcCdDeEfF\d]*))\.)/],
  ['listener_address', /^listener\.(((?:[_.\d]*|[_[\]aAbBcCdDeEfF\d]*))\.)/],
]

/** A stat's Prometheus form: the metric name and its labels, as Envoy's /stats/prometheus writes them. */
export interface TaggedStat {
  readonly metric: string
  readonly labels: readonly (readonly [name: string, value: string])[]
}

/**
 * Applies the rules one after another, each to what the previous ones left (Envoy matches each rule
 * against the full name and cuts all matches together; the two agree on the names this proxy reports).
 */
export function tagStat(name: string): TaggedStat {
  let rest = name
  const labels: [string, string][] = []
  for (const [tag, regex] of istioTagRules) {
    const match = regex.exec(rest)
    if (match === null || match[1] === undefined || match[1] === '') continue
    const cut = match[1]
    const at = match.index + match[0].indexOf(cut)
    rest = rest.slice(0, at) + rest.slice(at + cut.length)
    labels.push([tag, match[2] ?? ''])
  }
  return { metric: envoyMetricName(rest), labels }
}

/**
 * Envoy's Prometheus name for a (tag-stripped) stat: `envoy_` and the name with every character
 * outside `[a-zA-Z0-9_]` made `_` (source/server/admin/prometheus_stats.cc, PrometheusStatsFormatter).
 */
function envoyMetricName(statName: string): string {
  return `envoy_${statName.replace(/[^a-zA-Z0-9_]/g, '_')}`
}
