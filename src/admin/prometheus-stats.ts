// The proxy's Prometheus exposition (stats port and admin /stats/prometheus): this worker's registry, merged with every other worker's when there are several.

import type { Registry } from 'prom-client'
import { type StatsRegistry, withText } from '../telemetry/stats-registry.ts'
import type { OtherWorkers } from './other-workers.ts'

/** What `registry.getMetricsAsJSON()` gives: one worker's metrics, as prom-client's aggregation reads them. */
export type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

/**
 * The text Prometheus scrapes. With worker threads each counts its own traffic, so the scrape of
 * worker 0 asks the others for theirs and sums them with prom-client's AggregatorRegistry.aggregate
 * (counters and histograms summed label set by label set; a metric that declares another `aggregator`,
 * such as a gauge every worker computes alike, is merged by it); the registry's text sources follow once.
 */
export async function prometheusText(
  registry: StatsRegistry,
  others: OtherWorkers | undefined,
): Promise<string> {
  if (others === undefined) return registry.metrics()
  const [own, rest] = await Promise.all([
    registry.getMetricsAsJSON(),
    others.gather('prometheus', undefined) as Promise<WorkerMetrics[]>,
  ])
  // prom-client's index (node:cluster with it) loads only where there are worker threads to merge.
  const { AggregatorRegistry } = await import('prom-client')
  // The text sources (Envoy's stats) count in the table every worker shares: worker 0's text is the proxy's.
  return withText(await AggregatorRegistry.aggregate([own, ...rest]).metrics(), registry.text())
}
