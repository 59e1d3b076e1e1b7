// Istio's standard metrics (istio_requests_total, istio_tcp_*…): an observer that counts finished traffic in plain series, and prom-client metrics that read them when scraped.

import type { Metric, Registry } from 'prom-client'
import {
  fillRequestLabels,
  fillTcpLabels,
  type LocalLabels,
  type LocalNode,
  localLabels,
  RequestLabelInputs,
  requestLabelNames,
  tcpLabelNames,
} from './istio-metric-labels.ts'
import { metricsPolicyKey, ResolvedMetricsPolicy } from './istio-metric-policy.ts'
import {
  type HistogramCounts,
  istioHistogramBuckets,
  RequestSeries,
  TcpSeries,
} from './istio-metric-series.ts'
import type { RequestRecord } from './request-record.ts'
import type { TcpRecord } from './tcp-record.ts'
import type { DirectionTelemetry, IstioMetric } from './telemetry-policy.ts'
import { istioMetricNames } from './telemetry-policy.ts'
import type { TrafficObserver } from './traffic-observer.ts'

/** The series counted under one resolved metrics policy (a reload that changes the policy starts new ones). */
class PolicySeries {
  readonly policy: ResolvedMetricsPolicy
  readonly requests = new Map<string, RequestSeries>()
  readonly tcp = new Map<string, TcpSeries>()
  /** The series the last request went to: the next one usually has the same labels (no key to build). */
  lastRequest: RequestSeries | undefined
  /** What the last request's labels were derived from: the next with the same goes to `lastRequest` at once. */
  readonly lastRequestInputs = new RequestLabelInputs()

  constructor(policy: ResolvedMetricsPolicy) {
    this.policy = policy
  }
}

/** A label set's series is found by its values joined with a separator no label value holds. */
const separator = '\u0001'

/** What a prom-client registry reads of one metric family. */
interface FamilyValue {
  value: number
  labels: Record<string, string | number>
  metricName?: string
}

/**
 * Counts Istio's standard metrics for every request and TCP connection that ends, per the record's own
 * telemetry policy (`record.telemetry`, the model the request started on). The hot path adds to the last
 * request's series when the request's label inputs are the last one's (RequestLabelInputs); otherwise it
 * fills one reused array of label values, joins it into a key and adds to that key's series; label
 * objects and tagOverrides are made only when Prometheus scrapes.
 */
export class IstioMetrics implements TrafficObserver {
  readonly name = 'istio-metrics'
  readonly #local: LocalLabels
  readonly #byPolicyObject = new WeakMap<DirectionTelemetry['metrics'], PolicySeries>()
  readonly #byPolicyKey = new Map<string, PolicySeries>()
  #lastPolicyObject: DirectionTelemetry['metrics'] | undefined
  #lastPolicySeries: PolicySeries | undefined
  readonly #requestValues: string[] = new Array<string>(requestLabelNames.length).fill('')
  readonly #tcpValues: string[] = new Array<string>(tcpLabelNames.length).fill('')

  constructor(node: LocalNode) {
    this.#local = localLabels(node)
  }

  requestEnded(record: RequestRecord): void {
    const series = this.#policySeries(record.telemetry.metrics)
    if (series.policy.httpOff) return
    let s = series.lastRequest
    if (s === undefined || !series.lastRequestInputs.matches(record)) {
      const values = this.#requestValues
      fillRequestLabels(values, record, this.#local)
      if (s === undefined || !sameValues(s.labels, values)) {
        const key = values.join(separator)
        s = series.requests.get(key)
        if (s === undefined) {
          s = new RequestSeries(values.slice())
          series.requests.set(key, s)
        }
        series.lastRequest = s
      }
      series.lastRequestInputs.remember(record)
    }
    s.requests++
    // Envoy records whole milliseconds (absl duration division truncates).
    if (record.endTime >= 0) s.duration.observe(Math.floor(record.endTime - record.startTime))
    s.requestBytes.observe(record.requestBodyBytes)
    s.responseBytes.observe(record.responseBodyBytes)
    s.requestMessages += record.requestMessages
    s.responseMessages += record.responseMessages
  }

  /**
   * Counted when the connection ends, opened included, so that every TCP metric of a connection has the
   * same labels: the route and the upstream peer are known only after the opening.
   */
  tcpEnded(record: TcpRecord): void {
    if (!record.opened) return
    const series = this.#policySeries(record.telemetry.metrics)
    if (series.policy.tcpOff) return
    const values = this.#tcpValues
    fillTcpLabels(values, record, this.#local)
    const key = values.join(separator)
    let s = series.tcp.get(key)
    if (s === undefined) {
      s = new TcpSeries(values.slice())
      series.tcp.set(key, s)
    }
    s.opened++
    s.closed++
    s.sentBytes += record.bytesSent
    s.receivedBytes += record.bytesReceived
  }

  #policySeries(metrics: DirectionTelemetry['metrics']): PolicySeries {
    // Requests of one model and direction follow each other: the last one's policy, without a WeakMap lookup.
    if (metrics === this.#lastPolicyObject && this.#lastPolicySeries !== undefined)
      return this.#lastPolicySeries
    const series = this.#seriesOfPolicy(metrics)
    this.#lastPolicyObject = metrics
    this.#lastPolicySeries = series
    return series
  }

  #seriesOfPolicy(metrics: DirectionTelemetry['metrics']): PolicySeries {
    const known = this.#byPolicyObject.get(metrics)
    if (known !== undefined) return known
    const key = metricsPolicyKey(metrics)
    let series = this.#byPolicyKey.get(key)
    if (series === undefined) {
      series = new PolicySeries(new ResolvedMetricsPolicy(metrics))
      this.#byPolicyKey.set(key, series)
    }
    this.#byPolicyObject.set(metrics, series)
    return series
  }

  /** Registers the ten metric families in `registry`; each reads the series when scraped. */
  register(registry: Registry): void {
    const counter = (metric: IstioMetric, help: string, read: (s: RequestSeries) => number): void =>
      this.#family(registry, metric, 'counter', help, (out) =>
        this.#collectRequests(metric, (labels, s) => {
          const value = read(s)
          if (value > 0 || metric === 'REQUEST_COUNT') out.push({ value, labels })
        }),
      )
    const histogram = (
      metric: IstioMetric,
      help: string,
      read: (s: RequestSeries) => HistogramCounts,
    ): void =>
      this.#family(registry, metric, 'histogram', help, (out) =>
        this.#collectRequests(metric, (labels, s) =>
          pushHistogram(out, istioMetricNames[metric], labels, read(s)),
        ),
      )
    const tcp = (metric: IstioMetric, help: string, read: (s: TcpSeries) => number): void =>
      this.#family(registry, metric, 'counter', help, (out) => this.#collectTcp(metric, out, read))
    counter('REQUEST_COUNT', 'Requests, by reporter, source, destination and response', (s) => s.requests)
    histogram('REQUEST_DURATION', 'Request duration in milliseconds', (s) => s.duration)
    histogram('REQUEST_SIZE', 'Request size in bytes', (s) => s.requestBytes)
    histogram('RESPONSE_SIZE', 'Response size in bytes', (s) => s.responseBytes)
    counter('GRPC_REQUEST_MESSAGES', 'gRPC messages sent by the client', (s) => s.requestMessages)
    counter('GRPC_RESPONSE_MESSAGES', 'gRPC messages sent by the server', (s) => s.responseMessages)
    tcp('TCP_SENT_BYTES', 'Bytes sent to the downstream of TCP connections', (s) => s.sentBytes)
    tcp('TCP_RECEIVED_BYTES', 'Bytes received from the downstream of TCP connections', (s) => s.receivedBytes)
    tcp('TCP_OPENED_CONNECTIONS', 'TCP connections opened', (s) => s.opened)
    tcp('TCP_CLOSED_CONNECTIONS', 'TCP connections closed', (s) => s.closed)
  }

  #family(
    registry: Registry,
    metric: IstioMetric,
    type: 'counter' | 'histogram',
    help: string,
    collect: (out: FamilyValue[]) => void,
  ): void {
    const name = istioMetricNames[metric]
    const family = {
      name,
      help,
      type,
      aggregator: 'sum' as const,
      get: async () => {
        const values: FamilyValue[] = []
        collect(values)
        return { name, help, type, aggregator: 'sum' as const, values: mergeSameLabels(values) }
      },
      reset: (): void => {},
    }
    // A family is a prom-client metric in all but its class: the registry only calls get() and reads these fields.
    registry.registerMetric(family as unknown as Metric)
  }

  #collectRequests(
    metric: IstioMetric,
    emit: (labels: Record<string, string>, s: RequestSeries) => void,
  ): void {
    for (const series of this.#byPolicyKey.values()) {
      const policy = series.policy.metrics[metric]
      if (policy.disabled) continue
      for (const s of series.requests.values()) emit(policy.labels(requestLabelNames, s.labels), s)
    }
  }

  #collectTcp(metric: IstioMetric, out: FamilyValue[], read: (s: TcpSeries) => number): void {
    for (const series of this.#byPolicyKey.values()) {
      const policy = series.policy.metrics[metric]
      if (policy.disabled) continue
      for (const s of series.tcp.values()) {
        const value = read(s)
        if (value > 0 || metric === 'TCP_OPENED_CONNECTIONS' || metric === 'TCP_CLOSED_CONNECTIONS')
          out.push({ value, labels: policy.labels(tcpLabelNames, s.labels) })
      }
    }
  }
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Prometheus's cumulative buckets (le="0.5" … le="+Inf"), then _sum and _count, as prom-client's Histogram reports them. */
function pushHistogram(
  out: FamilyValue[],
  name: string,
  labels: Record<string, string>,
  h: HistogramCounts,
): void {
  let cumulative = 0
  for (let i = 0; i <= istioHistogramBuckets.length; i++) {
    cumulative += h.buckets[i]
    const le = i < istioHistogramBuckets.length ? istioHistogramBuckets[i] : '+Inf'
    out.push({ value: cumulative, labels: { ...labels, le }, metricName: `${name}_bucket` })
  }
  out.push({ value: h.sum, labels, metricName: `${name}_sum` })
  out.push({ value: h.count, labels, metricName: `${name}_count` })
}

/** Series whose labels an override made equal (a REMOVE, or policies of two reloads) are one series: summed. */
function mergeSameLabels(values: FamilyValue[]): FamilyValue[] {
  const merged = new Map<string, FamilyValue>()
  for (const v of values) {
    const key = `${v.metricName ?? ''}${separator}${JSON.stringify(v.labels)}`
    const known = merged.get(key)
    if (known === undefined) merged.set(key, { ...v })
    else known.value += v.value
  }
  return [...merged.values()]
}
