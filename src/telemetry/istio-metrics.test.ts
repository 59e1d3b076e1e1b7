// The Istio metrics observer: labels as istio/proxy's stats plugin derives them, exact counts, histogram buckets, tagOverrides and disabled metrics.

import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { serviceShortName } from './istio-metric-labels.ts'
import { IstioMetrics } from './istio-metrics.ts'
import type { RequestRecord } from './request-record.ts'
import type { TcpRecord } from './tcp-record.ts'
import {
  type DirectionTelemetry,
  type IstioMetric,
  istioMetrics,
  type MetricPolicy,
  meshTelemetryPolicy,
} from './telemetry-policy.ts'
import type { WorkloadMetadata } from './workload-metadata.ts'

const node = {
  workload: 'reviews-v2',
  namespace: 'default',
  serviceAccount: 'bookinfo-reviews',
  cluster: 'Kubernetes',
  trustDomain: 'cluster.local',
  labels: { app: 'reviews', version: 'v2' },
}

const productpage: WorkloadMetadata = {
  workloadName: 'productpage-v1',
  namespace: 'front',
  canonicalService: 'productpage',
  canonicalRevision: 'v1',
  app: 'productpage',
  version: 'v1',
  clusterId: 'Kubernetes',
  serviceAccount: 'bookinfo-productpage',
}

const mesh = meshTelemetryPolicy(undefined)

function request(overrides: Partial<RequestRecord>): RequestRecord {
  const base: RequestRecord = {
    direction: 'inbound',
    listenerName: 'inbound|9080||',
    method: 'GET',
    url: '/',
    path: '/',
    authority: 'reviews:9080',
    scheme: 'http',
    http2: false,
    header: () => undefined,
    startTime: 1000,
    endTime: 1007.6,
    responseStatus: 200,
    responseFlags: [],
    responseCodeDetails: 'via_upstream',
    grpcStatus: undefined,
    requestBodyBytes: 0,
    responseBodyBytes: 120,
    requestMessages: 0,
    responseMessages: 0,
    requestId: 'id',
    routeName: '',
    routeStatName: '',
    clusterName: 'inbound|9080||',
    destinationService: '',
    upstreamHostPort: '127.0.0.1:9080',
    attemptCount: 1,
    upstreamServiceTime: 5,
    downstreamRemoteAddress: '127.0.0.1:5000',
    downstreamLocalAddress: '127.0.0.1:9080',
    peer: {
      principal: 'cluster.local/ns/front/sa/bookinfo-productpage',
      namespace: 'front',
      trustDomain: 'cluster.local',
    },
    downstreamPeerMetadata: productpage,
    upstreamPeerMetadata: undefined,
    upstreamMtls: false,
    protocol: 'HTTP/1.1',
    upstreamLocalAddress: undefined,
    upstreamTransportFailureReason: '',
    requestedServerName: undefined,
    trace: undefined,
    telemetry: mesh.inbound,
  }
  return { ...base, ...overrides }
}

async function scrape(registry: Registry): Promise<string> {
  return registry.metrics()
}

/** The value of the sample `name{…}` whose labels include every pair of `labels`; undefined when none. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue
    const body = line.slice(name.length + 1, line.lastIndexOf('}'))
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`)))
      return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

function labelsOf(text: string, name: string): string[] {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`)) as string
  return [...line.matchAll(/(\w+)="/g)].map((m) => m[1])
}

function observer(): { metrics: IstioMetrics; registry: Registry } {
  const metrics = new IstioMetrics(node)
  const registry = new Registry()
  metrics.register(registry)
  return { metrics, registry }
}

describe('IstioMetrics (istio/proxy istio_stats.cc)', () => {
  it('labels an inbound mTLS request as reporter=destination with the peer as source and this node as destination', async () => {
    const { metrics, registry } = observer()
    metrics.requestEnded(request({}))
    metrics.requestEnded(request({}))
    const text = await scrape(registry)
    const expected = {
      reporter: 'destination',
      source_workload: 'productpage-v1',
      source_canonical_service: 'productpage',
      source_canonical_revision: 'v1',
      source_workload_namespace: 'front',
      source_principal: 'spiffe://cluster.local/ns/front/sa/bookinfo-productpage',
      source_app: 'productpage',
      source_version: 'v1',
      source_cluster: 'Kubernetes',
      destination_workload: 'reviews-v2',
      destination_workload_namespace: 'default',
      destination_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
      destination_app: 'reviews',
      destination_version: 'v2',
      destination_service: 'reviews',
      destination_canonical_service: 'reviews',
      destination_canonical_revision: 'v2',
      destination_service_name: 'reviews',
      destination_service_namespace: 'default',
      destination_cluster: 'Kubernetes',
      request_protocol: 'http',
      response_code: '200',
      grpc_response_status: '',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    }
    expect(sample(text, 'istio_requests_total', expected)).toBe(2)
    expect(labelsOf(text, 'istio_requests_total')).toEqual(Object.keys(expected))
  })

  it('labels an outbound plain-text request as reporter=source with unknown peer and connection_security_policy', async () => {
    const { metrics, registry } = observer()
    metrics.requestEnded(
      request({
        direction: 'outbound',
        peer: undefined,
        downstreamPeerMetadata: undefined,
        clusterName: 'outbound|9080||ratings.prod.svc.cluster.local',
        destinationService: 'ratings.prod.svc.cluster.local',
        responseStatus: 503,
        responseFlags: ['UF', 'URX'],
        telemetry: mesh.outbound,
      }),
    )
    const text = await scrape(registry)
    expect(
      sample(text, 'istio_requests_total', {
        reporter: 'source',
        source_workload: 'reviews-v2',
        source_principal: 'unknown',
        destination_workload: 'unknown',
        destination_principal: 'unknown',
        destination_service: 'ratings.prod.svc.cluster.local',
        destination_service_name: 'ratings',
        destination_service_namespace: 'unknown',
        destination_canonical_revision: 'latest',
        response_code: '503',
        response_flags: 'UF,URX',
        connection_security_policy: 'unknown',
      }),
    ).toBe(1)
  })

  it('names the outbound destination from its peer metadata over mTLS', async () => {
    const { metrics, registry } = observer()
    metrics.requestEnded(
      request({
        direction: 'outbound',
        destinationService: 'productpage.front.svc.cluster.local',
        upstreamPeerMetadata: productpage,
        upstreamMtls: true,
        telemetry: mesh.outbound,
      }),
    )
    const text = await scrape(registry)
    expect(
      sample(text, 'istio_requests_total', {
        reporter: 'source',
        source_principal: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews',
        destination_workload: 'productpage-v1',
        destination_workload_namespace: 'front',
        destination_principal: 'spiffe://cluster.local/ns/front/sa/bookinfo-productpage',
        destination_service_namespace: 'front',
        destination_canonical_service: 'productpage',
      }),
    ).toBe(1)
  })

  it('puts whole milliseconds and body bytes into Envoy default buckets', async () => {
    const { metrics, registry } = observer()
    // 7.6 ms → 7; 120 response bytes; 0 request bytes.
    metrics.requestEnded(request({}))
    metrics.requestEnded(request({ endTime: 1000.2, responseBodyBytes: 5000 }))
    const text = await scrape(registry)
    const d = 'istio_request_duration_milliseconds'
    expect(sample(text, `${d}_bucket`, { le: '0.5' })).toBe(1)
    expect(sample(text, `${d}_bucket`, { le: '5' })).toBe(1)
    expect(sample(text, `${d}_bucket`, { le: '10' })).toBe(2)
    expect(sample(text, `${d}_bucket`, { le: '+Inf' })).toBe(2)
    expect(sample(text, `${d}_sum`, {})).toBe(7)
    expect(sample(text, `${d}_count`, {})).toBe(2)
    expect(sample(text, 'istio_response_bytes_bucket', { le: '100' })).toBe(0)
    expect(sample(text, 'istio_response_bytes_bucket', { le: '250' })).toBe(1)
    expect(sample(text, 'istio_response_bytes_bucket', { le: '5000' })).toBe(2)
    expect(sample(text, 'istio_response_bytes_sum', {})).toBe(5120)
    expect(sample(text, 'istio_request_bytes_bucket', { le: '0.5' })).toBe(2)
  })

  it('labels gRPC with its status and counts its messages', async () => {
    const { metrics, registry } = observer()
    metrics.requestEnded(request({ http2: true, grpcStatus: '5', requestMessages: 3, responseMessages: 2 }))
    const text = await scrape(registry)
    const labels = { request_protocol: 'grpc', grpc_response_status: '5' }
    expect(sample(text, 'istio_requests_total', labels)).toBe(1)
    expect(sample(text, 'istio_request_messages_total', labels)).toBe(3)
    expect(sample(text, 'istio_response_messages_total', labels)).toBe(2)
  })

  it('applies tagOverrides (UPSERT a literal, REMOVE a label) and skips a disabled metric', async () => {
    const policy = (overrides: Partial<Record<IstioMetric, MetricPolicy>>): DirectionTelemetry => {
      const metrics = Object.fromEntries(
        istioMetrics.map((m) => [m, overrides[m] ?? { disabled: false, tagOverrides: [] }]),
      ) as Record<IstioMetric, MetricPolicy>
      return { metrics, accessLog: undefined, tracing: undefined }
    }
    const telemetry = policy({
      REQUEST_COUNT: {
        disabled: false,
        tagOverrides: [
          { tag: 'response_code', operation: 'REMOVE', value: '' },
          { tag: 'team', operation: 'UPSERT', value: 'books' },
          { tag: 'destination_app', operation: 'UPSERT', value: 'renamed' },
        ],
      },
      REQUEST_DURATION: { disabled: true, tagOverrides: [] },
    })
    const { metrics, registry } = observer()
    metrics.requestEnded(request({ telemetry, responseStatus: 200 }))
    metrics.requestEnded(request({ telemetry, responseStatus: 404 }))
    const text = await scrape(registry)
    const line = text.split('\n').filter((l) => l.startsWith('istio_requests_total{'))
    // The removed label is absent, so 200 and 404 are one series.
    expect(line).toHaveLength(1)
    expect(line[0]).not.toContain('response_code=')
    expect(sample(text, 'istio_requests_total', { team: 'books', destination_app: 'renamed' })).toBe(2)
    expect(text).not.toContain('istio_request_duration_milliseconds_bucket')
    expect(sample(text, 'istio_response_bytes_count', { response_code: '404' })).toBe(1)
  })

  it('counts a TCP connection at its end: opened, closed and bytes with request_protocol=tcp', async () => {
    const { metrics, registry } = observer()
    const tcp: TcpRecord = {
      direction: 'inbound',
      listenerName: 'inbound|9000||',
      opened: true,
      startTime: 0,
      endTime: 10,
      bytesReceived: 11,
      bytesSent: 22,
      responseFlags: [],
      terminationDetails: '',
      clusterName: 'inbound|9000||',
      destinationService: '',
      upstreamHostPort: '127.0.0.1:9000',
      downstreamRemoteAddress: '127.0.0.1:1',
      downstreamLocalAddress: '127.0.0.1:9000',
      sni: undefined,
      peer: undefined,
      downstreamPeerMetadata: undefined,
      upstreamPeerMetadata: undefined,
      upstreamMtls: false,
      upstreamLocalAddress: undefined,
      upstreamTransportFailureReason: '',
      telemetry: mesh.inbound,
    }
    metrics.tcpEnded(tcp)
    metrics.tcpEnded({ ...tcp, opened: false })
    metrics.tcpEnded(tcp)
    const text = await scrape(registry)
    const labels = { reporter: 'destination', request_protocol: 'tcp', connection_security_policy: 'none' }
    expect(sample(text, 'istio_tcp_connections_opened_total', labels)).toBe(2)
    expect(sample(text, 'istio_tcp_connections_closed_total', labels)).toBe(2)
    expect(sample(text, 'istio_tcp_received_bytes_total', labels)).toBe(22)
    expect(sample(text, 'istio_tcp_sent_bytes_total', labels)).toBe(44)
    expect(labelsOf(text, 'istio_tcp_connections_opened_total')).not.toContain('response_code')
  })

  it('keeps alternating label sets apart (the last series is reused only for equal labels)', async () => {
    const { metrics, registry } = observer()
    for (const status of [200, 404, 200, 200, 503, 404])
      metrics.requestEnded(request({ responseStatus: status }))
    const text = await scrape(registry)
    expect(sample(text, 'istio_requests_total', { response_code: '200' })).toBe(3)
    expect(sample(text, 'istio_requests_total', { response_code: '404' })).toBe(2)
    expect(sample(text, 'istio_requests_total', { response_code: '503' })).toBe(1)
  })

  it('tells apart requests that share every object but one input (the last inputs shortcut)', async () => {
    const { metrics, registry } = observer()
    // One peer object and one metadata object throughout, as one keep-alive connection gives them.
    const base = request({})
    const other: WorkloadMetadata = { ...productpage, workloadName: 'productpage-v2' }
    const ended = (overrides: Partial<RequestRecord>): void => metrics.requestEnded({ ...base, ...overrides })
    // Each after a request of the base labels, so that only the input that changed can tell them apart.
    const variants: Partial<RequestRecord>[] = [
      { responseStatus: 404 },
      { responseFlags: ['DC'] },
      { responseFlags: ['DC'] },
      { responseFlags: ['UH'] },
      { grpcStatus: '0' },
      { http2: true, header: (name) => (name === 'content-type' ? 'application/grpc' : undefined) },
      { http2: true },
      { peer: undefined },
      { downstreamPeerMetadata: other },
      { authority: 'details:9080' },
      // With a service routed to, the Host is no value: one series.
      { destinationService: 'ratings.prod.svc.cluster.local', authority: 'other:1' },
      { destinationService: 'ratings.prod.svc.cluster.local' },
      { direction: 'outbound' },
    ]
    for (const variant of variants) {
      ended({})
      ended(variant)
    }
    // The inputs that tell apart only gRPC requests, or only outbound ones.
    ended({ grpcStatus: '0' })
    ended({ grpcStatus: '14' })
    const outbound: Partial<RequestRecord> = { direction: 'outbound', destinationService: 'details' }
    ended(outbound)
    ended({ ...outbound, upstreamMtls: true, upstreamPeerMetadata: productpage })
    ended({ ...outbound, upstreamMtls: true, upstreamPeerMetadata: other })
    ended({ ...outbound, upstreamMtls: false, upstreamPeerMetadata: other })
    const text = await scrape(registry)
    const requests = (labels: Record<string, string>): number | undefined =>
      sample(text, 'istio_requests_total', labels)
    const baseLabels = {
      source_workload: 'productpage-v1',
      destination_service: 'reviews',
      response_code: '200',
      response_flags: '-',
      request_protocol: 'http',
      connection_security_policy: 'mutual_tls',
    }
    expect(requests({ ...baseLabels, reporter: 'destination' })).toBe(14)
    expect(requests({ response_code: '404' })).toBe(1)
    expect(requests({ response_flags: 'DC' })).toBe(2)
    expect(requests({ response_flags: 'UH' })).toBe(1)
    expect(requests({ request_protocol: 'grpc', grpc_response_status: '0' })).toBe(2)
    expect(requests({ grpc_response_status: '14' })).toBe(1)
    expect(requests({ request_protocol: 'grpc', grpc_response_status: '' })).toBe(1)
    expect(requests({ connection_security_policy: 'none' })).toBe(1)
    expect(requests({ source_workload: 'productpage-v2' })).toBe(1)
    expect(requests({ destination_service: 'details', reporter: 'destination' })).toBe(1)
    expect(requests({ destination_service: 'ratings.prod.svc.cluster.local' })).toBe(2)
    expect(requests({ reporter: 'source', destination_service: 'reviews' })).toBe(1)
    const outboundDetails = { reporter: 'source', destination_service: 'details' }
    expect(requests({ ...outboundDetails, destination_workload: 'unknown' })).toBe(1)
    expect(requests({ ...outboundDetails, destination_workload: 'productpage-v1' })).toBe(1)
    const v2 = { ...outboundDetails, destination_workload: 'productpage-v2' }
    expect(
      requests({ ...v2, destination_principal: 'spiffe://cluster.local/ns/front/sa/bookinfo-productpage' }),
    ).toBe(1)
    expect(requests({ ...v2, destination_principal: 'unknown' })).toBe(1)
  })

  it('names services as Istio does', () => {
    expect(serviceShortName('reviews.default.svc.cluster.local')).toBe('reviews')
    expect(serviceShortName('api.example.com')).toBe('api.example.com')
    expect(serviceShortName('reviews')).toBe('reviews')
  })
})
