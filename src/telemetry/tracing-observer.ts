// Records a span for each sampled request when it ends, with Envoy's and Istio's span names and tags, and exports it over OTLP/HTTP.

import { networkInterfaces } from 'node:os'
import type { FinishedSpan, SpanSink } from './finished-span.ts'
import { Counter, type Registry } from './prom-metrics.ts'
import type { RequestRecord } from './request-record.ts'
import { envoyPrometheusName } from './stats-registry.ts'
import type { TelemetryPolicy, TracingPolicy } from './telemetry-policy.ts'
import type { SampledTrace } from './trace-context.ts'
import type { TrafficObserver } from './traffic-observer.ts'
import { localWorkloadMetadata, type NodeDescription } from './workload-metadata.ts'

/** Who this proxy is, for the span tags and the exported resource. */
export interface TracingNode extends NodeDescription {
  /** `region/zone/subzone`, or ''. */
  readonly locality: string
}

/** Envoy truncates the path in `http.url` to max_path_tag_length, 256 by default. */
const maxPathTagLength = 256

/**
 * The runtime's tracing: the OpenTelemetry SDK is imported (`prepare`) only when a model first has
 * tracing, so a proxy that does not trace never loads it. Each worker thread has its own runtime, so
 * its own exporter. Only requests the tracing filter sampled (`record.trace`) cost anything here.
 */
export class TracingObserver implements TrafficObserver {
  readonly name = 'tracing'
  readonly #sinks = new Map<string, SpanSink>()
  readonly #resourceAttributes: Readonly<Record<string, string>>
  /** Tags every span of this proxy carries (Envoy's node_id and zone, Istio's buildServiceTags). */
  readonly #proxyTags: readonly (readonly [string, string])[]
  readonly #sent: Counter
  readonly #dropped: Counter
  #sinkModule: Promise<typeof import('./otlp-span-sink.ts')> | undefined

  constructor(stats: Registry, node: TracingNode) {
    const workload = localWorkloadMetadata(node)
    // Istio names the span's service after the proxy's service cluster: `<canonical service>.<namespace>`.
    this.#resourceAttributes = { 'service.name': `${workload.canonicalService}.${workload.namespace}` }
    this.#proxyTags = [
      [
        'node_id',
        `sidecar~${podAddress()}~${node.workload}.${node.namespace}~${node.namespace}.svc.cluster.local`,
      ],
      ['zone', node.locality.split('/')[1] ?? ''],
      // istio/istio pilot/pkg/networking/core/tracing.go, buildServiceTags.
      ['istio.canonical_revision', workload.canonicalRevision],
      ['istio.canonical_service', workload.canonicalService],
      ['istio.mesh_id', 'unknown'],
      ['istio.namespace', workload.namespace],
      ['istio.cluster_id', workload.clusterId || 'unknown'],
    ]
    // Envoy's tracing.opentelemetry.spans_sent; spans_dropped is Outrigger's (Envoy does not count its drops).
    this.#sent = new Counter({
      name: envoyPrometheusName('tracing.opentelemetry.spans_sent'),
      help: 'Spans the OpenTelemetry collector accepted.',
      registers: [stats],
    })
    this.#dropped = new Counter({
      name: envoyPrometheusName('tracing.opentelemetry.spans_dropped'),
      help: 'Spans lost: the export queue was full, or the collector failed or could not be reached.',
      registers: [stats],
    })
  }

  /**
   * Readies the exporters `policy` needs, importing the SDK the first time one is needed. Returns true
   * when either direction traces (the runtime then lets this observer hear of requests).
   */
  async prepare(policy: TelemetryPolicy): Promise<boolean> {
    const endpoints = new Set<string>()
    for (const tracing of [policy.inbound.tracing, policy.outbound.tracing])
      if (tracing !== undefined && !tracing.disableSpanReporting) endpoints.add(tracing.otlpEndpoint)
    const missing = [...endpoints].filter((endpoint) => !this.#sinks.has(endpoint))
    if (missing.length > 0) {
      this.#sinkModule ??= import('./otlp-span-sink.ts')
      const { OtlpSpanSink } = await this.#sinkModule
      const counters = {
        sent: (count: number) => this.#sent.inc(count),
        dropped: (count: number) => this.#dropped.inc(count),
      }
      for (const endpoint of missing)
        this.#sinks.set(endpoint, new OtlpSpanSink(endpoint, this.#resourceAttributes, counters))
    }
    return policy.inbound.tracing !== undefined || policy.outbound.tracing !== undefined
  }

  requestEnded(record: RequestRecord): void {
    const trace = record.trace
    if (trace === undefined) return
    const policy = record.telemetry.tracing
    if (policy === undefined || policy.disableSpanReporting) return
    const sink = this.#sinks.get(policy.otlpEndpoint)
    if (sink === undefined) this.#dropped.inc()
    else sink.add(this.#finishedSpan(record, trace, policy))
  }

  /** Exports what is queued, waiting at most `timeoutMs`. */
  async shutdown(timeoutMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>((done) => {
      timer = setTimeout(done, timeoutMs)
    })
    await Promise.race([Promise.allSettled([...this.#sinks.values()].map((s) => s.shutdown())), timeout])
    clearTimeout(timer)
    this.#sinks.clear()
  }

  /** Envoy's downstream span tags (source/common/tracing/http_tracer_impl.cc, finalizeDownstreamSpan and setCommonTags). */
  #finishedSpan(record: RequestRecord, trace: SampledTrace, policy: TracingPolicy): FinishedSpan {
    const status = record.responseStatus
    const error = status === 0 || status >= 500
    const attributes: Record<string, string> = {}
    for (const [tag, value] of this.#proxyTags) attributes[tag] = value
    const requestId = record.requestId || record.header('x-request-id')
    if (requestId !== undefined && requestId !== '') attributes['guid:x-request-id'] = requestId
    const scheme = record.header('x-forwarded-proto') ?? record.scheme
    attributes['http.url'] = `${scheme}://${record.authority}${record.url.slice(0, maxPathTagLength)}`
    attributes['http.method'] = record.method
    attributes.downstream_cluster = record.header('x-envoy-downstream-service-cluster') ?? '-'
    attributes.user_agent = record.header('user-agent') ?? '-'
    attributes['http.protocol'] = record.http2 ? 'HTTP/2' : 'HTTP/1.1'
    const remote = record.downstreamRemoteAddress
    attributes['peer.address'] = remote.slice(0, remote.lastIndexOf(':'))
    attributes.request_size = String(record.requestBodyBytes)
    attributes.response_size = String(record.responseBodyBytes)
    attributes.component = 'proxy'
    if (record.clusterName !== '') {
      attributes.upstream_cluster = record.clusterName
      attributes['upstream_cluster.name'] = record.clusterName
    }
    attributes['http.status_code'] = String(status)
    attributes.response_flags = record.responseFlags.length === 0 ? '-' : record.responseFlags.join(',')
    if (error) attributes.error = 'true'
    if (record.grpcStatus !== undefined) attributes['grpc.status_code'] = record.grpcStatus
    for (const custom of policy.customTags) {
      const value =
        custom.kind === 'literal'
          ? custom.value
          : custom.kind === 'environment'
            ? (process.env[custom.name] ?? custom.defaultValue)
            : (record.header(custom.name) ?? custom.defaultValue)
      // Envoy's custom tags set nothing for an empty value.
      if (value !== '') attributes[custom.tag] = value
    }
    return {
      name: spanName(record),
      kind: record.direction === 'inbound' ? 'SERVER' : 'CLIENT',
      traceId: trace.traceId,
      spanId: trace.spanId,
      parentSpanId: trace.parentSpanId,
      startMs: performance.timeOrigin + record.startTime,
      endMs: performance.timeOrigin + (record.endTime < 0 ? performance.now() : record.endTime),
      attributes,
      error,
    }
  }
}

/**
 * The span's operation name as Istio configures it: a route's decorator `<host>:<port>/*`
 * (istio/istio pilot/pkg/networking/core/route/route.go getRouteOperation for outbound routes, and
 * telemetry.TraceOperation for the inbound route). The host is the cluster's service on outbound and
 * the request's Host on inbound (an inbound cluster names no service here); with no cluster (404 NR),
 * Envoy's default name: `egress <host>` or `ingress`.
 */
function spanName(record: RecordedName): string {
  const cluster = record.clusterName
  const parts = cluster.split('|')
  const port = parts[1]
  if (record.direction === 'outbound') {
    if (parts.length !== 4 || parts[3] === '') return `egress ${record.authority}`
    return `${parts[3]}:${port}/*`
  }
  const authority = record.authority
  if (parts.length !== 4 || authority === '') return 'ingress'
  const colon = authority.lastIndexOf(':')
  const host = colon === -1 || authority.endsWith(']') ? authority : authority.slice(0, colon)
  return `${host}:${port}/*`
}

type RecordedName = Pick<RequestRecord, 'clusterName' | 'direction' | 'authority'>

/** This machine's first non-internal IPv4 address (Istio's node id carries the pod IP), or 127.0.0.1. */
function podAddress(): string {
  for (const list of Object.values(networkInterfaces()))
    for (const address of list ?? [])
      if (address.family === 'IPv4' && !address.internal) return address.address
  return '127.0.0.1'
}
