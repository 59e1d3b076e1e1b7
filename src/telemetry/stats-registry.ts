// The proxy's Prometheus registry (prom-client): one per runtime, served at admin /stats/prometheus; every exporter's metrics join it.

import { Registry } from './prom-metrics.ts'

/**
 * Envoy's Prometheus name for a stat: `envoy_` and the stat name with every character outside
 * `[a-zA-Z0-9_]` made `_` (source/server/admin/prometheus_stats.cc, PrometheusStatsFormatter::metricName
 * and sanitizeName), e.g. `server.days_until_first_cert_expiring` → `envoy_server_days_until_first_cert_expiring`.
 */
export function envoyPrometheusName(statName: string): string {
  return `envoy_${statName.replace(/[^a-zA-Z0-9_]/g, '_')}`
}

/**
 * A new registry of the proxy's own metrics. It is not prom-client's global default registry, so two
 * runtimes in one process (tests, worker threads) never share or collide; and it holds no default Node
 * process metrics: their event-loop-delay histogram and GC observer would run all the time for numbers
 * /memory already gives on demand.
 */
export function createStatsRegistry(): StatsRegistry {
  return new StatsRegistry()
}

/**
 * prom-client's registry plus text written at scrape time by sources whose metric names are known only
 * then (Envoy's stats: tag extraction makes the name, and a cluster name can add to it).
 */
export class StatsRegistry extends Registry {
  #textSources: (() => string)[] = []

  /** `source` returns whole metrics in the text exposition format, none of them a registered metric's name. */
  addText(source: () => string): void {
    this.#textSources = [...this.#textSources, source]
  }

  override async metrics(): Promise<string> {
    return withText(await super.metrics(), this.text())
  }

  /** What the text sources write now (already the whole proxy's: they read the shared counter table). */
  text(): string {
    let text = ''
    for (const source of this.#textSources) text += source()
    return text
  }
}

/** Registered metrics' exposition followed by text-source metrics. */
export function withText(registered: string, text: string): string {
  return text === '' ? registered : `${registered}${registered.endsWith('\n') ? '' : '\n'}${text}`
}
