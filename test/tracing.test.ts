// OpenTelemetry tracing across two real sidecars (client → server → app) with a real OTLP/HTTP receiver: ids, parents, Envoy's and Istio's tags, W3C and B3, sampling, a dead collector, and no SDK without tracing.

import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { egressSidecar, ingressSidecar, loopbackService, yamlStream } from './harness/istio.ts'
import { freePorts } from './harness/ports.ts'
import { eventually, type ProxyProcess, startProxy } from './harness/proxy-process.ts'
import { startUpstream, type Upstream } from './harness/upstream.ts'

/** A span as the OTLP/HTTP JSON encoding carries it (opentelemetry-proto trace/v1/trace.proto), with its resource. */
interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  /** SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3. */
  readonly kind: number
  readonly status?: { code?: number }
  readonly attributes: Record<string, string>
  readonly service: string
}

interface OtlpAttribute {
  key: string
  value: { stringValue?: string }
}

interface OtlpExport {
  resourceSpans: {
    resource: { attributes: OtlpAttribute[] }
    scopeSpans: {
      spans: (Omit<ReceivedSpan, 'attributes' | 'service'> & { attributes: OtlpAttribute[] })[]
    }[]
  }[]
}

const flat = (attributes: OtlpAttribute[]): Record<string, string> =>
  Object.fromEntries(attributes.map((a) => [a.key, a.value.stringValue ?? '']))

/** A real OTLP/HTTP trace receiver on loopback: decodes each JSON export request. */
async function startReceiver(): Promise<{ server: Server; port: number; spans: ReceivedSpan[] }> {
  const spans: ReceivedSpan[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      expect(req.url).toBe('/v1/traces')
      expect(req.headers['content-type']).toBe('application/json')
      const body = JSON.parse(Buffer.concat(chunks).toString()) as OtlpExport
      for (const rs of body.resourceSpans) {
        const service = flat(rs.resource.attributes)['service.name']
        for (const ss of rs.scopeSpans)
          for (const s of ss.spans) spans.push({ ...s, attributes: flat(s.attributes), service })
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done))
  return { server, port: (server.address() as AddressInfo).port, spans }
}

const tracing = (port: number, samplingPercent: number): string =>
  `telemetry:\n  tracing: {otlpEndpoint: 'http://127.0.0.1:${port}/v1/traces', samplingPercent: ${samplingPercent}}\n`

let receiver: Awaited<ReturnType<typeof startReceiver>>
let app: Upstream
let client: ProxyProcess
let server: ProxyProcess
let zero: ProxyProcess
let egressPort: number
let ingressPort: number
let zeroPort: number

beforeAll(async () => {
  receiver = await startReceiver()
  app = await startUpstream('app')
  ;[egressPort, ingressPort, zeroPort] = await freePorts(3)
  server = await startProxy({
    resources: { 'sidecar.yaml': ingressSidecar(ingressPort, app.port) },
    labels: { app: 'reviews', version: 'v2' },
    extraBootstrap: `${tracing(receiver.port, 100)}`,
  })
  client = await startProxy({
    resources: {
      'sidecar.yaml': yamlStream(egressSidecar(egressPort), loopbackService('reviews', 9080, ingressPort)),
    },
    labels: { app: 'productpage', version: 'v1' },
    locality: 'eu-west/eu-west-1a',
    extraBootstrap: tracing(receiver.port, 100),
  })
  zero = await startProxy({
    resources: { 'sidecar.yaml': ingressSidecar(zeroPort, app.port) },
    labels: { app: 'zero' },
    extraBootstrap: tracing(receiver.port, 0),
  })
}, 60_000)

afterAll(async () => {
  await Promise.all([client?.stop(), server?.stop(), zero?.stop()])
  await app?.close()
  receiver?.server.close()
})

/** Sends a request through the client sidecar to reviews (→ server sidecar → app); returns what the app saw. */
async function throughMesh(
  headers: Record<string, string> = {},
): Promise<Record<string, string | string[] | undefined>> {
  const res = await request(`http://127.0.0.1:${egressPort}/reviews/1?x=y`, {
    headers: { host: 'reviews:9080', 'user-agent': 'tracing-test', ...headers },
  })
  expect(res.statusCode).toBe(200)
  const body = (await res.body.json()) as { headers: Record<string, string | string[] | undefined> }
  return body.headers
}

const spansOf = (traceId: string): ReceivedSpan[] => receiver.spans.filter((s) => s.traceId === traceId)

async function twoSpans(traceId: string): Promise<{ clientSpan: ReceivedSpan; serverSpan: ReceivedSpan }> {
  await eventually(async () => spansOf(traceId).length === 2, 10_000)
  const spans = spansOf(traceId)
  const clientSpan = spans.find((s) => s.kind === 3)
  const serverSpan = spans.find((s) => s.kind === 2)
  if (clientSpan === undefined || serverSpan === undefined) throw new Error(`spans: ${JSON.stringify(spans)}`)
  return { clientSpan, serverSpan }
}

const traceparentOf = (headers: Record<string, string | string[] | undefined>) =>
  /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(headers.traceparent))

describe('tracing across two sidecars', () => {
  it('one trace: the outbound CLIENT span is the inbound SERVER span parent, which is the app request parent', async () => {
    const seen = await throughMesh()
    const w3c = traceparentOf(seen)
    if (w3c === null) throw new Error(`app saw traceparent ${seen.traceparent}`)
    const [, traceId, appParent] = w3c
    const { clientSpan, serverSpan } = await twoSpans(traceId)
    expect(clientSpan.parentSpanId ?? '').toBe('')
    expect(serverSpan.parentSpanId).toBe(clientSpan.spanId)
    expect(appParent).toBe(serverSpan.spanId)
    // B3 goes along with W3C (propagation defaults to both), naming the same span.
    expect(seen['x-b3-traceid']).toBe(traceId)
    expect(seen['x-b3-spanid']).toBe(serverSpan.spanId)
    expect(seen['x-b3-parentspanid']).toBe(clientSpan.spanId)
    expect(seen['x-b3-sampled']).toBe('1')
    expect(seen['x-request-id']).toBe(clientSpan.attributes['guid:x-request-id'])
    expect(serverSpan.attributes['guid:x-request-id']).toBe(clientSpan.attributes['guid:x-request-id'])
  })

  it('names and tags the spans as Envoy and Istio do (route decorator, http.*, upstream_cluster, response_flags, istio.*)', async () => {
    const seen = await throughMesh()
    const traceId = traceparentOf(seen)?.[1] ?? ''
    const { clientSpan, serverSpan } = await twoSpans(traceId)
    expect(clientSpan.name).toBe('reviews.default.svc.cluster.local:9080/*')
    expect(serverSpan.name).toBe(`reviews:${ingressPort}/*`)
    expect(clientSpan.service).toBe('productpage.default')
    expect(serverSpan.service).toBe('reviews.default')
    expect(clientSpan.attributes).toMatchObject({
      'http.method': 'GET',
      'http.url': 'http://reviews:9080/reviews/1?x=y',
      'http.protocol': 'HTTP/1.1',
      'http.status_code': '200',
      upstream_cluster: 'outbound|9080||reviews.default.svc.cluster.local',
      'upstream_cluster.name': 'outbound|9080||reviews.default.svc.cluster.local',
      response_flags: '-',
      component: 'proxy',
      user_agent: 'tracing-test',
      downstream_cluster: '-',
      'peer.address': '127.0.0.1',
      zone: 'eu-west-1a',
      'istio.canonical_service': 'productpage',
      'istio.canonical_revision': 'v1',
      'istio.namespace': 'default',
      'istio.cluster_id': 'Kubernetes',
      'istio.mesh_id': 'unknown',
    })
    expect(clientSpan.attributes.node_id).toMatch(
      /^sidecar~[\d.]+~test\.default~default\.svc\.cluster\.local$/,
    )
    expect(clientSpan.attributes.error).toBeUndefined()
    expect(serverSpan.attributes).toMatchObject({
      upstream_cluster: `inbound|${ingressPort}||`,
      'http.status_code': '200',
      'istio.canonical_service': 'reviews',
      'istio.canonical_revision': 'v2',
    })
  })

  it("marks a local reply: 404 NR on the client span has response_flags NR, no upstream_cluster, Envoy's default name", async () => {
    const res = await request(`http://127.0.0.1:${egressPort}/`, {
      headers: { host: 'nowhere:9080', traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01` },
    })
    await res.body.text()
    expect(res.statusCode).toBe(404)
    await eventually(async () => spansOf('ab'.repeat(16)).length === 1, 10_000)
    const [span] = spansOf('ab'.repeat(16))
    expect(span).toMatchObject({ name: 'egress nowhere:9080', kind: 3, parentSpanId: 'cd'.repeat(8) })
    expect(span.attributes).toMatchObject({ 'http.status_code': '404', response_flags: 'NR' })
    expect(span.attributes.upstream_cluster).toBeUndefined()
  })

  it('continues a W3C trace from the downstream: same trace id, its span as the parent, tracestate passed on', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736'
    const seen = await throughMesh({
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      tracestate: 'vendor=1',
    })
    expect(seen.tracestate).toBe('vendor=1')
    const { clientSpan, serverSpan } = await twoSpans(traceId)
    expect(clientSpan.parentSpanId).toBe('00f067aa0ba902b7')
    expect(serverSpan.parentSpanId).toBe(clientSpan.spanId)
    expect(seen.traceparent).toBe(`00-${traceId}-${serverSpan.spanId}-01`)
  })

  it('continues B3 multi headers (64-bit trace id) and answers a single b3 header with one', async () => {
    const seen = await throughMesh({
      'x-b3-traceid': '463ac35c9f6413ad',
      'x-b3-spanid': 'a2fb4a1d1a96d312',
      'x-b3-sampled': '1',
    })
    const traceId = '0000000000000000463ac35c9f6413ad'
    const { clientSpan, serverSpan } = await twoSpans(traceId)
    expect(clientSpan.parentSpanId).toBe('a2fb4a1d1a96d312')
    expect(seen['x-b3-traceid']).toBe(traceId)
    expect(seen['x-b3-spanid']).toBe(serverSpan.spanId)

    const single = await throughMesh({ b3: '80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1' })
    const pair = await twoSpans('80f198ee56343ba864fe8b2a57d3eff7')
    expect(pair.clientSpan.parentSpanId).toBe('e457b5a2e4d86bd1')
    expect(single.b3).toBe(
      `80f198ee56343ba864fe8b2a57d3eff7-${pair.serverSpan.spanId}-1-${pair.clientSpan.spanId}`,
    )
    expect(single['x-b3-traceid']).toBeUndefined()
  })

  it("honours the downstream's decision not to sample: no span, the headers pass unchanged", async () => {
    const unsampled = `00-${'12'.repeat(16)}-${'34'.repeat(8)}-00`
    const seen = await throughMesh({ traceparent: unsampled, 'x-b3-sampled': '0' })
    expect(seen.traceparent).toBe(unsampled)
    expect(seen['x-b3-sampled']).toBe('0')
    // A sampled request after it: once its spans are in, the unsampled one would have been too.
    const marker = traceparentOf(await throughMesh())?.[1] ?? ''
    await twoSpans(marker)
    expect(spansOf('12'.repeat(16))).toEqual([])
  })

  it('samples 0 % of requests without a decision, and still records those the downstream sampled', async () => {
    const plain = await request(`http://127.0.0.1:${zeroPort}/zero`, {
      headers: { 'x-request-id': 'zero-unsampled' },
    })
    await plain.body.text()
    const sampledTrace = '56'.repeat(16)
    const res = await request(`http://127.0.0.1:${zeroPort}/zero`, {
      headers: { traceparent: `00-${sampledTrace}-${'78'.repeat(8)}-01` },
    })
    const seen = ((await res.body.json()) as { headers: Record<string, string> }).headers
    await eventually(async () => spansOf(sampledTrace).length === 1, 10_000)
    expect(spansOf(sampledTrace)[0]).toMatchObject({
      kind: 2,
      parentSpanId: '78'.repeat(8),
      service: 'zero.default',
    })
    expect(seen.traceparent).toBe(`00-${sampledTrace}-${spansOf(sampledTrace)[0].spanId}-01`)
    expect(receiver.spans.filter((s) => s.attributes['guid:x-request-id'] === 'zero-unsampled')).toEqual([])
    expect(
      app.seen.find((r) => r.headers['x-request-id'] === 'zero-unsampled')?.headers.traceparent,
    ).toBeUndefined()
  })
})

describe('tracing with a dead collector', () => {
  let proxy: ProxyProcess
  let port: number
  let logFile: string
  let logDir: string

  beforeAll(async () => {
    const [deadPort] = await freePorts(1)
    ;[port] = await freePorts(1)
    logDir = await mkdtemp(join(tmpdir(), 'outrigger-modules-'))
    logFile = join(logDir, 'modules.log')
    proxy = await startProxy({
      resources: { 'sidecar.yaml': ingressSidecar(port, app.port) },
      extraBootstrap: tracing(deadPort, 100),
      env: moduleLogEnv(logFile),
    })
  }, 30_000)

  afterAll(async () => {
    await proxy?.stop()
    await rm(logDir, { recursive: true, force: true })
  })

  it('serves every request and counts the spans it could not export', async () => {
    const started = performance.now()
    for (let i = 0; i < 20; i++) {
      const res = await request(`http://127.0.0.1:${port}/dead/${i}`)
      await res.body.text()
      expect(res.statusCode).toBe(200)
    }
    expect(performance.now() - started).toBeLessThan(5000)
    await eventually(async () => (await droppedSpans(proxy)) === 20, 20_000)
    expect(await sentSpans(proxy)).toBe(0)
    // The positive control of the test below: this proxy traces, so it did load the SDK.
    expect(await readFile(logFile, 'utf8')).toMatch(/@opentelemetry\/sdk-trace-base/)
  })
})

describe('tracing with a collector that accepts and never answers', () => {
  let proxy: ProxyProcess
  let port: number
  let silent: Server
  let exports = 0

  beforeAll(async () => {
    silent = createServer(() => {
      exports++
    })
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done))
    ;[port] = await freePorts(1)
    proxy = await startProxy({
      resources: { 'sidecar.yaml': ingressSidecar(port, app.port) },
      extraBootstrap: tracing((silent.address() as AddressInfo).port, 100),
    })
  }, 30_000)

  afterAll(async () => {
    await proxy?.stop()
    silent?.closeAllConnections()
    silent?.close()
  })

  it('serves every request while the export waits, and drops the batch at the export timeout (10 s)', async () => {
    const started = performance.now()
    for (let i = 0; i < 20; i++) {
      const res = await request(`http://127.0.0.1:${port}/silent/${i}`)
      await res.body.text()
      expect(res.statusCode).toBe(200)
    }
    expect(performance.now() - started).toBeLessThan(5000)
    await eventually(async () => exports >= 1, 5000)
    // Still served while the collector holds the export.
    const res = await request(`http://127.0.0.1:${port}/silent/while-held`)
    await res.body.text()
    expect(res.statusCode).toBe(200)
    await eventually(async () => (await droppedSpans(proxy)) >= 20, 20_000)
    expect(await sentSpans(proxy)).toBe(0)
  }, 30_000)
})

describe('without tracing', () => {
  it('never loads the OpenTelemetry SDK, exporter or resources', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outrigger-modules-'))
    const logFile = join(dir, 'modules.log')
    const [port] = await freePorts(1)
    const proxy = await startProxy({
      resources: { 'sidecar.yaml': ingressSidecar(port, app.port) },
      env: moduleLogEnv(logFile),
    })
    try {
      const res = await request(`http://127.0.0.1:${port}/untraced`, {
        headers: { traceparent: `00-${'9a'.repeat(16)}-${'bc'.repeat(8)}-01` },
      })
      await res.body.text()
      expect(res.statusCode).toBe(200)
      const modules = await readFile(logFile, 'utf8')
      expect(modules).toMatch(/src\/proxy-runtime\.ts/)
      // Only @opentelemetry/api, which prom-client itself imports (lib/metrics/processCpuTotal.js).
      expect(modules).not.toMatch(/@opentelemetry\/(?!api\/)/)
      // The context passes through untouched.
      expect(app.seen.at(-1)?.headers.traceparent).toBe(`00-${'9a'.repeat(16)}-${'bc'.repeat(8)}-01`)
    } finally {
      await proxy.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})

function moduleLogEnv(file: string): Record<string, string> {
  return {
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${join(import.meta.dirname, 'harness', 'module-log.ts')}`,
    OUTRIGGER_MODULE_LOG: file,
  }
}

async function counter(proxy: ProxyProcess, name: string): Promise<number> {
  const text = await (await proxy.admin('/stats/prometheus')).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? Number.NaN : Number(line.split(' ')[1])
}

const droppedSpans = (proxy: ProxyProcess) => counter(proxy, 'envoy_tracing_opentelemetry_spans_dropped')
const sentSpans = (proxy: ProxyProcess) => counter(proxy, 'envoy_tracing_opentelemetry_spans_sent')
