// The OpenTelemetry SDK side of tracing, imported only once a model traces: spans batched through a bounded queue to an OTLP/HTTP collector.

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
import type { FinishedSpan, SpanSink } from './finished-span.ts'
import { log } from './log.ts'

/** What a sink counts: spans the collector accepted, and spans lost (queue full, or export failed). */
export interface SpanCounters {
  sent(count: number): void
  dropped(count: number): void
}

/** The queue and batch limits (the SDK's defaults, but a 1 s delay where the SDK waits 5 s). */
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
  readonly #counters: SpanCounters
  readonly #endpoint: string
  #failing = false
  queued = 0

  constructor(inner: SpanExporter, counters: SpanCounters, endpoint: string) {
    this.#inner = inner
    this.#counters = counters
    this.#endpoint = endpoint
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.queued -= spans.length
    this.#inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) {
        this.#counters.sent(spans.length)
        if (this.#failing) log.info(`tracing: span export to ${this.#endpoint} works again`)
        this.#failing = false
      } else {
        this.#counters.dropped(spans.length)
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
 * The spans of one collector endpoint: a BatchSpanProcessor with a bounded queue over the OTLP/HTTP
 * (JSON) exporter. Adding never waits: a full queue drops the span (counted), and a dead or slow
 * collector costs only the export's own timer and socket.
 */
export class OtlpSpanSink implements SpanSink {
  readonly #resource: Resource
  readonly #exporter: CountingExporter
  readonly #processor: BatchSpanProcessor
  readonly #counters: SpanCounters

  constructor(endpoint: string, resourceAttributes: Attributes, counters: SpanCounters) {
    this.#resource = resourceFromAttributes(resourceAttributes)
    this.#counters = counters
    const otlp = new OTLPTraceExporter({ url: endpoint, timeoutMillis: exportTimeoutMillis })
    this.#exporter = new CountingExporter(otlp, counters, endpoint)
    this.#processor = new BatchSpanProcessor(this.#exporter, {
      maxQueueSize,
      maxExportBatchSize,
      scheduledDelayMillis,
      exportTimeoutMillis,
    })
  }

  add(span: FinishedSpan): void {
    if (this.#exporter.queued >= maxQueueSize) {
      this.#counters.dropped(1)
      return
    }
    this.#exporter.queued++
    this.#processor.onEnd(new ExportedSpan(span, this.#resource))
  }

  shutdown(): Promise<void> {
    return this.#processor.shutdown()
  }
}
