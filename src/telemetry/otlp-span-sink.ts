// The OpenTelemetry SDK side of tracing, imported only once a model traces: spans batched through a bounded queue and posted to an OTLP/HTTP collector with undici.

import {
  type Attributes,
  type HrTime,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
} from '@opentelemetry/api'
import { type ExportResult, ExportResultCode } from '@opentelemetry/core'
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer'
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { Client, type Dispatcher } from 'undici'
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

/** The collector's answer to one export: a 2xx status is success, anything else (or no answer) a failure. */
class ExportResponse implements Dispatcher.DispatchHandler {
  readonly #done: (error: Error | undefined) => void
  #status = 0

  constructor(done: (error: Error | undefined) => void) {
    this.#done = done
  }

  onRequestStart(): void {}

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.#status = statusCode
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    const ok = this.#status >= 200 && this.#status < 300
    this.#done(ok ? undefined : new Error(`the collector answered ${this.#status}`))
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, error: Error): void {
    this.#done(error)
  }
}

/**
 * Posts each batch as OTLP/HTTP JSON (the SDK's JsonTraceSerializer) through an undici Client, the HTTP
 * client the data path already runs. The SDK's own exporter posts with node:http, whose ClientRequest
 * shares OutgoingMessage and the socket's write path with the downstream responses: its rare exports
 * left those functions deoptimized for every request (bench/results/instructions-2026-12-07-tracing.md).
 * Counts what leaves the processor's queue, each batch's spans as sent or dropped; `queued` tracks the
 * spans added and not yet handed here.
 */
class OtlpHttpExporter implements SpanExporter {
  readonly #client: Client
  readonly #path: string
  readonly #host: string
  readonly #counters: SpanCounters
  readonly #endpoint: string
  #failing = false
  queued = 0

  constructor(endpoint: string, counters: SpanCounters) {
    const url = new URL(endpoint)
    this.#client = new Client(url.origin, {
      connectTimeout: exportTimeoutMillis,
      headersTimeout: exportTimeoutMillis,
      bodyTimeout: exportTimeoutMillis,
    })
    this.#path = `${url.pathname}${url.search}`
    this.#host = url.host
    this.#counters = counters
    this.#endpoint = endpoint
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.queued -= spans.length
    const body = JsonTraceSerializer.serializeRequest(spans)
    const finished = (error: Error | undefined): void => {
      if (error === undefined) {
        this.#counters.sent(spans.length)
        if (this.#failing) log.info(`tracing: span export to ${this.#endpoint} works again`)
        this.#failing = false
        done({ code: ExportResultCode.SUCCESS })
        return
      }
      this.#counters.dropped(spans.length)
      if (!this.#failing)
        log.warning(
          `tracing: span export to ${this.#endpoint} failed, spans are dropped until it works: ${error.message}`,
        )
      this.#failing = true
      done({ code: ExportResultCode.FAILED, error })
    }
    if (body === undefined) {
      finished(new Error('the spans could not be serialized'))
      return
    }
    this.#client.dispatch(
      {
        method: 'POST',
        path: this.#path,
        headers: { host: this.#host, 'content-type': 'application/json' },
        body,
      },
      new ExportResponse(finished),
    )
  }

  async shutdown(): Promise<void> {
    await this.#client.close()
  }

  async forceFlush(): Promise<void> {}
}

/**
 * The spans of one collector endpoint: a BatchSpanProcessor with a bounded queue over the OTLP/HTTP
 * (JSON) exporter above. Adding never waits: a full queue drops the span (counted), and a dead or slow
 * collector costs only the export's own timer and socket.
 */
export class OtlpSpanSink implements SpanSink {
  readonly #resource: Resource
  readonly #exporter: OtlpHttpExporter
  readonly #processor: BatchSpanProcessor
  readonly #counters: SpanCounters

  constructor(endpoint: string, resourceAttributes: Attributes, counters: SpanCounters) {
    this.#resource = resourceFromAttributes(resourceAttributes)
    this.#counters = counters
    this.#exporter = new OtlpHttpExporter(endpoint, counters)
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
