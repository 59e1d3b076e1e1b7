// A Telemetry metrics policy resolved once per distinct policy: which standard metrics are off, and each one's label set after its tagOverrides.

import {
  type DirectionTelemetry,
  type IstioMetric,
  istioMetrics,
  type MetricPolicy,
} from './telemetry-policy.ts'

/** One metric's overrides: the label set a series gets, or nothing when the metric is disabled. */
export class MetricLabelPolicy {
  readonly disabled: boolean
  readonly #policy: MetricPolicy

  constructor(policy: MetricPolicy) {
    this.#policy = policy
    this.disabled = policy.disabled
  }

  /**
   * The standard labels with the overrides applied in order (istio_stats.cc MetricOverrides::overrideTags):
   * UPSERT sets a label (a new one is added), REMOVE drops it from the series.
   */
  labels(names: readonly string[], values: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {}
    for (let i = 0; i < names.length; i++) out[names[i]] = values[i]
    for (const override of this.#policy.tagOverrides) {
      if (override.operation === 'REMOVE') delete out[override.tag]
      else out[override.tag] = override.value
    }
    return out
  }
}

/** The metric policies of one direction's telemetry, with the hot path's shortcuts precomputed. */
export class ResolvedMetricsPolicy {
  readonly metrics: Readonly<Record<IstioMetric, MetricLabelPolicy>>
  /** Every HTTP metric is disabled: a request is not even looked at. */
  readonly httpOff: boolean
  /** Every TCP metric is disabled. */
  readonly tcpOff: boolean

  constructor(policy: DirectionTelemetry['metrics']) {
    const metrics = {} as Record<IstioMetric, MetricLabelPolicy>
    for (const metric of istioMetrics) metrics[metric] = new MetricLabelPolicy(policy[metric])
    this.metrics = metrics
    this.httpOff = istioMetrics.every((m) => m.startsWith('TCP_') || policy[m].disabled)
    this.tcpOff = istioMetrics.every((m) => !m.startsWith('TCP_') || policy[m].disabled)
  }
}

/** A key equal for two policies exactly when they export alike (so reloads that change nothing share series). */
export function metricsPolicyKey(policy: DirectionTelemetry['metrics']): string {
  return JSON.stringify(istioMetrics.map((m) => [policy[m].disabled, policy[m].tagOverrides]))
}
