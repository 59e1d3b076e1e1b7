// The tracing observer's spans: customTags (literal, environment, header with default), the error status, disableSpanReporting, and the flush at shutdown, received by a real OTLP/HTTP endpoint.

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RequestRecord } from './request-record.ts'
import { meshTelemetryPolicy, type TelemetryPolicy, type TracingPolicy } from './telemetry-policy.ts'
import { decideTrace } from './trace-context.ts'
import { TracingObserver } from './tracing-observer.ts'

interface OtlpSpan {
  name: string
  kind: number
  traceId: string
  status?: { code?: number }
  attributes: { key: string; value: { stringValue?: string } }[]
}

const received: OtlpSpan[] = []
const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString()) as {
      resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[]
    }
    for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) received.push(...ss.spans)
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
  })
})
let endpoint: string

beforeAll(async () => {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`
})

afterAll(() => {
  server.close()
})

function policyWith(tracing: Partial<TracingPolicy>): TelemetryPolicy {
  const mesh = meshTelemetryPolicy({
    tracing: { otlpEndpoint: endpoint, samplingPercent: 100, propagation: ['W3C'] },
  })
  const direction = { ...mesh.inbound, tracing: { ...(mesh.inbound.tracing as TracingPolicy), ...tracing } }
  return { inbound: direction, outbound: direction }
}

/** A finished inbound request as the http layer's RequestContext presents it. */
function record(policy: TelemetryPolicy, status: number, headers: Record<string, string>): RequestRecord {
  const tracing = policy.inbound.tracing as TracingPolicy
  const trace = decideTrace(tracing, Object.entries(headers).flat())
  return {
    direction: 'inbound',
    telemetry: policy.inbound,
    listenerName: 'inbound|9080||',
    method: 'GET',
    url: '/a?b=c',
    path: '/a',
    authority: 'reviews:9080',
    scheme: 'http',
    http2: false,
    header: (name) => headers[name],
    startTime: performance.now() - 5,
    endTime: performance.now(),
    responseStatus: status,
    responseFlags: [],
    responseCodeDetails: '',
    grpcStatus: undefined,
    requestBodyBytes: 0,
    responseBodyBytes: 12,
    requestMessages: 0,
    responseMessages: 0,
    requestId: 'rid-1',
    routeName: '',
    routeStatName: '',
    clusterName: 'inbound|9080||',
    destinationService: '',
    upstreamHostPort: '127.0.0.1:1',
    attemptCount: 1,
    upstreamServiceTime: 1,
    downstreamRemoteAddress: '127.0.0.1:5000',
    downstreamLocalAddress: '127.0.0.1:9080',
    peer: undefined,
    downstreamPeerMetadata: undefined,
    upstreamPeerMetadata: undefined,
    upstreamMtls: false,
    protocol: 'HTTP/1.1',
    upstreamLocalAddress: undefined,
    upstreamTransportFailureReason: '',
    requestedServerName: undefined,
    trace,
  }
}

const node = {
  workload: 'reviews-v2',
  namespace: 'shop',
  serviceAccount: 'reviews',
  cluster: 'Kubernetes',
  labels: { app: 'reviews', version: 'v2' },
  locality: '',
}

const attributesOf = (span: OtlpSpan): Record<string, string> =>
  Object.fromEntries(span.attributes.map((a) => [a.key, a.value.stringValue ?? '']))

describe('TracingObserver', () => {
  it('adds the customTags (literal, environment, header with its default) and marks a 5xx as an error', async () => {
    process.env.OUTRIGGER_TRACING_TEST_ZONE = 'blue'
    const policy = policyWith({
      customTags: [
        { tag: 'team', kind: 'literal', value: 'checkout' },
        { tag: 'deploy', kind: 'environment', name: 'OUTRIGGER_TRACING_TEST_ZONE', defaultValue: 'none' },
        {
          tag: 'missing-env',
          kind: 'environment',
          name: 'OUTRIGGER_TRACING_TEST_UNSET',
          defaultValue: 'dflt',
        },
        { tag: 'user', kind: 'header', name: 'x-user', defaultValue: 'anonymous' },
        { tag: 'tenant', kind: 'header', name: 'x-tenant', defaultValue: '' },
      ],
    })
    const observer = new TracingObserver(new Registry(), node)
    expect(await observer.prepare(policy)).toBe(true)
    const ok = record(policy, 200, { 'x-user': 'ada' })
    const failed = record(policy, 503, {})
    observer.requestEnded(ok)
    observer.requestEnded(failed)
    await observer.shutdown()
    const okSpan = received.find((s) => s.traceId === ok.trace?.traceId)
    const failedSpan = received.find((s) => s.traceId === failed.trace?.traceId)
    if (okSpan === undefined || failedSpan === undefined)
      throw new Error(`received ${JSON.stringify(received)}`)
    expect(okSpan).toMatchObject({ name: 'reviews:9080/*', kind: 2 })
    expect(attributesOf(okSpan)).toMatchObject({
      team: 'checkout',
      deploy: 'blue',
      'missing-env': 'dflt',
      user: 'ada',
      'istio.canonical_service': 'reviews',
      'istio.namespace': 'shop',
      'http.url': 'http://reviews:9080/a?b=c',
      response_size: '12',
    })
    expect(attributesOf(okSpan).tenant).toBeUndefined()
    expect(attributesOf(okSpan).error).toBeUndefined()
    expect(okSpan.status?.code ?? 0).toBe(0)
    expect(attributesOf(failedSpan)).toMatchObject({
      user: 'anonymous',
      error: 'true',
      'http.status_code': '503',
    })
    // STATUS_CODE_ERROR = 2 (opentelemetry-proto trace.proto Status.StatusCode).
    expect(failedSpan.status?.code).toBe(2)
  })

  it('reports nothing under disableSpanReporting, and does not trace a model without tracing', async () => {
    const before = received.length
    const policy = policyWith({ disableSpanReporting: true })
    const observer = new TracingObserver(new Registry(), node)
    expect(await observer.prepare(policy)).toBe(true)
    observer.requestEnded(record(policy, 200, {}))
    await observer.shutdown()
    expect(received.length).toBe(before)
    expect(await new TracingObserver(new Registry(), node).prepare(meshTelemetryPolicy(undefined))).toBe(
      false,
    )
  })
})
