// One label set's counts of Istio's standard metrics, kept in plain numbers and typed arrays that the data path adds to and a scrape reads.

/**
 * Envoy's default histogram buckets, which Istio's standard histograms use (no bucket settings in
 * Istio's bootstrap unless the `sidecar.istio.io/statsHistogramBuckets` annotation asks; Envoy's
 * config.metrics.v3.StatsConfig histogram_bucket_settings documents the defaults).
 */
export const istioHistogramBuckets: readonly number[] = Object.freeze([
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
])

/** The bounds as unboxed doubles, for the per-request search (a frozen array holds them boxed). */
const bucketBounds = Float64Array.from(istioHistogramBuckets)

/** A histogram's counts: one slot per bucket (not cumulative) plus one for +Inf, the sum and the count. */
export class HistogramCounts {
  readonly buckets = new Float64Array(istioHistogramBuckets.length + 1)
  sum = 0
  count = 0

  observe(value: number): void {
    const bounds = bucketBounds
    let i = 0
    while (i < bounds.length && value > bounds[i]) i++
    this.buckets[i]++
    this.sum += value
    this.count++
  }
}

/** The HTTP metrics of one label set (one reporter, peer, service, code, flags…). */
export class RequestSeries {
  /** Label values in requestLabelNames order, after the policy's overrides are applied per metric at scrape. */
  readonly labels: readonly string[]
  requests = 0
  readonly duration = new HistogramCounts()
  readonly requestBytes = new HistogramCounts()
  readonly responseBytes = new HistogramCounts()
  requestMessages = 0
  responseMessages = 0

  constructor(labels: readonly string[]) {
    this.labels = labels
  }
}

/** The TCP metrics of one label set. */
export class TcpSeries {
  readonly labels: readonly string[]
  opened = 0
  closed = 0
  sentBytes = 0
  receivedBytes = 0

  constructor(labels: readonly string[]) {
    this.labels = labels
  }
}
