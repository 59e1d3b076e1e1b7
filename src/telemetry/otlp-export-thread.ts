// The thread that exports spans: the OpenTelemetry SDK's batch processor and OTLP/HTTP exporter, fed by the OtlpSpanSink of the thread that traced them.

import { parentPort, workerData } from 'node:worker_threads'
import {
  type Attributes,
  type HrTime,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
} from '@opentelemetry/api'
import { type ExportResult, ExportResultCode } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { FinishedSpan } from './finished-span.ts'
import { log } from './log.ts'
import type { ExportReport, ExportThreadData, SinkMessage } from './otlp-span-sink.ts'

/** The batch limits (the SDK's defaults, but a 1 s delay where the SDK waits 5 s); the sink bounds the queue. */
const maxQueueSize = 2048
const maxExportBatchSize = 512
const scheduledDelayMillis = 1000
const exportTimeoutMillis = 10_000

const scope = { name: 'outrigger' }

function hrTime(epochMs: number): HrTime {
  const seconds = Math.trunc(epochMs / 1000)
  return [seconds, Math.round((epochMs - seconds * 1000) * 1e6)]
}

/** A FinishedSpan as the SDK's processors and exporters read a span. */
class ExportedSpan implements ReadableSpan {
  readonly name: string
  readonly kind: SpanKind
  readonly parentSpanContext: SpanContext | undefined
  readonly startTime: HrTime
  readonly endTime: HrTime
  readonly duration: HrTime
  readonly status: { code: SpanStatusCode }
  readonly attributes: Attributes
  readonly links = []
  readonly events = []
  readonly ended = true
  readonly resource: Resource
  readonly instrumentationScope = scope
  readonly droppedAttributesCount = 0
  readonly droppedEventsCount = 0
  readonly droppedLinksCount = 0
  readonly #context: SpanContext

  constructor(span: FinishedSpan, resource: Resource) {
    this.name = span.name
    this.kind = span.kind === 'SERVER' ? SpanKind.SERVER : SpanKind.CLIENT
    this.#context = { traceId: span.traceId, spanId: span.spanId, traceFlags: TraceFlags.SAMPLED }
    this.parentSpanContext =
      span.parentSpanId === ''
        ? undefined
        : { traceId: span.traceId, spanId: span.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true }
    this.startTime = hrTime(span.startMs)
    this.endTime = hrTime(span.endMs)
    this.duration = hrTime(span.endMs - span.startMs)
    // Envoy's OpenTelemetry span marks the `error` tag as an error status.
    this.status = { code: span.error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET }
    this.attributes = span.attributes
    this.resource = resource
  }

  spanContext(): SpanContext {
    return this.#context
  }
}

/**
 * Counts what leaves the processor's queue: each batch's spans as sent or dropped by the export's result.
 * The processor's queue holds exactly the spans added and not yet handed here, which `queued` tracks.
 */
class CountingExporter implements SpanExporter {
  readonly #inner: SpanExporter
  readonly #report: (report: ExportReport) => void
  readonly #endpoint: string
  #failing = false
  queued = 0

  constructor(inner: SpanExporter, report: (report: ExportReport) => void, endpoint: string) {
    this.#inner = inner
    this.#report = report
    this.#endpoint = endpoint
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.queued -= spans.length
    this.#inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        this.#report({ sent: spans.length, dropped: 0 })
        if (this.#failing) log.info(`tracing: span export to ${this.#endpoint} works again`)
        this.#failing = false
      } else {
        this.#report({ sent: 0, dropped: spans.length })
        if (!this.#failing)
          log.warning(
            `tracing: span export to ${this.#endpoint} failed, spans are dropped until it works: ${result.error?.message ?? 'unknown error'}`,
          )
        this.#failing = true
      }
      done(result)
    })
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown()
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve()
  }
}

/**
 * The spans of one collector endpoint: a BatchSpanProcessor over the OTLP/HTTP (JSON) exporter. What
 * each export did goes back to the sink as an ExportReport; a span that finds the queue full is
 * reported dropped at once, so the sink's count of spans in this thread stays exact.
 */
function serve(data: ExportThreadData): void {
  const port = parentPort
  if (port === null) throw new Error('otlp-export-thread runs only as a worker thread')
  const report = (r: ExportReport): void => port.postMessage(r)
  const resource = resourceFromAttributes(data.resourceAttributes)
  const otlp = new OTLPTraceExporter({ url: data.endpoint, timeoutMillis: exportTimeoutMillis })
  const exporter = new CountingExporter(otlp, report, data.endpoint)
  const processor = new BatchSpanProcessor(exporter, {
    maxQueueSize,
    maxExportBatchSize,
    scheduledDelayMillis,
    exportTimeoutMillis,
  })
  port.on('message', (message: SinkMessage) => {
    if (message.type === 'shutdown') {
      void processor.shutdown().finally(() => port.postMessage({ sent: 0, dropped: 0, closed: true }))
      return
    }
    let dropped = 0
    for (const span of message.spans) {
      if (exporter.queued >= maxQueueSize) {
        dropped++
        continue
      }
      exporter.queued++
      processor.onEnd(new ExportedSpan(span, resource))
    }
    if (dropped > 0) report({ sent: 0, dropped })
  })
}

serve(workerData as ExportThreadData)
