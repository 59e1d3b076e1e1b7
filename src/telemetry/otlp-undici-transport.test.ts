// The span exporter's undici transport and sink against real loopback OTLP/HTTP receivers: the bytes and content type posted, a collector that is down, one that never answers (the export timeout), and the private undici copy.

import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import { resourceFromAttributes } from '@opentelemetry/resources'
import * as sharedUndici from 'undici'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { ExportedSpan } from './exported-span.ts'
import type { FinishedSpan } from './finished-span.ts'
import { OtlpSpanSink } from './otlp-span-sink.ts'
import { UndiciExporterTransport } from './otlp-undici-transport.ts'
import { loadPrivateUndici } from './private-undici.ts'

interface Received {
  readonly url: string
  readonly contentType: string | undefined
  readonly body: Buffer
}

/** A loopback receiver; `answer` decides each response (or holds it, by not ending it). */
async function startReceiver(
  answer: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ server: Server; endpoint: string; received: Received[] }> {
  const received: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({
        url: req.url ?? '',
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks),
      })
      answer(req, res)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return { server, endpoint: `http://127.0.0.1:${port}/v1/traces`, received }
}

const servers: Server[] = []
const cleanups: (() => void)[] = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})
afterAll(() => {
  for (const server of servers) server.closeAllConnections()
  for (const server of servers) server.close()
})

async function receiver(answer: (req: IncomingMessage, res: ServerResponse) => void) {
  const started = await startReceiver(answer)
  servers.push(started.server)
  return started
}

/** A port that was free a moment ago: nothing listens there. */
async function deadEndpoint(): Promise<string> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((done) => server.close(done))
  return `http://127.0.0.1:${port}/v1/traces`
}

function finishedSpan(n: number): FinishedSpan {
  const now = Date.now()
  return {
    name: `span-${n}`,
    kind: 'SERVER',
    traceId: n.toString(16).padStart(32, '0'),
    spanId: n.toString(16).padStart(16, '0'),
    parentSpanId: '',
    startMs: now - 5,
    endMs: now,
    attributes: { 'http.method': 'GET' },
    error: false,
  }
}

function counters() {
  const counted = { sent: 0, dropped: 0 }
  return {
    counted,
    sent: (count: number) => {
      counted.sent += count
    },
    dropped: (count: number) => {
      counted.dropped += count
    },
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`not within ${timeoutMs} ms`)
    await new Promise((done) => setTimeout(done, 20))
  }
}

describe('UndiciExporterTransport', () => {
  it('POSTs the serialized request (protobuf here) with its content type to the endpoint path, and succeeds on 200', async () => {
    const { endpoint, received } = await receiver((_req, res) => res.writeHead(200).end())
    const transport = new UndiciExporterTransport(endpoint, 'application/x-protobuf')
    cleanups.push(() => transport.shutdown())
    const resource = resourceFromAttributes({ 'service.name': 'reviews.default' })
    const data = ProtobufTraceSerializer.serializeRequest([new ExportedSpan(finishedSpan(7), resource)])
    if (data === undefined) throw new Error('nothing serialized')
    const response = await transport.send(data, 2000)
    expect(response.status).toBe('success')
    expect(received).toHaveLength(1)
    expect(received[0].url).toBe('/v1/traces')
    expect(received[0].contentType).toBe('application/x-protobuf')
    expect(Buffer.compare(received[0].body, Buffer.from(data))).toBe(0)
  })

  it("fails with the collector's status on a non-2xx answer", async () => {
    const { endpoint } = await receiver((_req, res) => res.writeHead(503).end('busy'))
    const transport = new UndiciExporterTransport(endpoint, 'application/json')
    cleanups.push(() => transport.shutdown())
    const response = await transport.send(Buffer.from('{}'), 2000)
    expect(response.status).toBe('failure')
    expect(response.status === 'failure' && response.error.message).toMatch(/503/)
  })

  it('fails at once when nothing listens', async () => {
    const transport = new UndiciExporterTransport(await deadEndpoint(), 'application/json')
    cleanups.push(() => transport.shutdown())
    const started = performance.now()
    const response = await transport.send(Buffer.from('{}'), 5000)
    expect(response.status).toBe('failure')
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('gives up on a collector that never answers after the export timeout, and frees its connection', async () => {
    const { endpoint, received } = await receiver(() => {})
    const transport = new UndiciExporterTransport(endpoint, 'application/json')
    cleanups.push(() => transport.shutdown())
    const started = performance.now()
    const response = await transport.send(Buffer.from('{}'), 300)
    const elapsed = performance.now() - started
    expect(response.status).toBe('failure')
    expect(elapsed).toBeGreaterThanOrEqual(290)
    expect(elapsed).toBeLessThan(2000)
    // The next export is not stuck behind the one that timed out.
    const next = await transport.send(Buffer.from('{}'), 300)
    expect(next.status).toBe('failure')
    expect(received).toHaveLength(2)
  })
})

describe('OtlpSpanSink', () => {
  it('exports added spans as OTLP JSON and counts them sent', async () => {
    const { endpoint, received } = await receiver((_req, res) => res.writeHead(200).end('{}'))
    const { counted, ...sinkCounters } = counters()
    const sink = new OtlpSpanSink(endpoint, { 'service.name': 'reviews.default' }, sinkCounters)
    for (let n = 1; n <= 3; n++) sink.add(finishedSpan(n))
    await sink.shutdown()
    expect(counted).toEqual({ sent: 3, dropped: 0 })
    expect(received.every((r) => r.contentType === 'application/json')).toBe(true)
    const names = received.flatMap(
      (r) =>
        (
          JSON.parse(r.body.toString()) as {
            resourceSpans: { scopeSpans: { spans: { name: string }[] }[] }[]
          }
        ).resourceSpans[0].scopeSpans[0].spans,
    )
    expect(names.map((s) => s.name).sort()).toEqual(['span-1', 'span-2', 'span-3'])
  })

  it('never waits on a collector that is down: adding is immediate, the batch is counted dropped', async () => {
    const { counted, ...sinkCounters } = counters()
    const sink = new OtlpSpanSink(await deadEndpoint(), { 'service.name': 'x.default' }, sinkCounters)
    const started = performance.now()
    for (let n = 1; n <= 100; n++) sink.add(finishedSpan(n))
    expect(performance.now() - started).toBeLessThan(100)
    await until(() => counted.dropped === 100, 5000)
    expect(counted.sent).toBe(0)
    await sink.shutdown()
  })

  it('holds at most one batch in flight and a full queue for a collector that never answers, and counts the rest dropped', async () => {
    const { server, endpoint, received } = await receiver(() => {})
    const { counted, ...sinkCounters } = counters()
    const sink = new OtlpSpanSink(endpoint, { 'service.name': 'x.default' }, sinkCounters)
    for (let n = 1; n <= 5000; n++) sink.add(finishedSpan(n))
    // The batch processor exports a full batch (512) at once and waits for it; 2048 more fit the queue.
    expect(counted.dropped).toBe(5000 - 512 - 2048)
    await until(() => received.length === 1, 2000)
    expect(counted.sent).toBe(0)
    // The collector goes away: the batch in flight and the queue fail, and every span is counted once.
    server.close()
    server.closeAllConnections()
    await sink.shutdown()
    expect(counted).toEqual({ sent: 0, dropped: 5000 })
  })
})

describe('loadPrivateUndici', () => {
  it('loads undici as new functions, and leaves every other import with the shared copy', () => {
    const own = loadPrivateUndici()
    expect(own.Client).not.toBe(sharedUndici.Client)
    expect(own.Client.prototype.dispatch).not.toBe(sharedUndici.Client.prototype.dispatch)
    const require = createRequire(import.meta.url)
    expect((require('undici') as typeof sharedUndici).Client).toBe(sharedUndici.Client)
  })
})
