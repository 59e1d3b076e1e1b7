// The spans of one collector endpoint: the OpenTelemetry SDK's batch processor and OTLP/HTTP JSON exporter, sending over undici in the serving thread.

import { type ExportResult, ExportResultCode } from '@opentelemetry/core'
import {
  createOtlpNetworkExportDelegate,
  ExporterMetrics,
  OTLPExporterBase,
} from '@opentelemetry/otlp-exporter-base'
import { JsonTraceSerializer, TraceExporterMetricsHelper } from '@opentelemetry/otlp-transformer'
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base'
import { ExportedSpan } from './exported-span.ts'
import type { FinishedSpan, SpanSink } from './finished-span.ts'
import { log } from './log.ts'
import { UndiciExporterTransport } from './otlp-undici-transport.ts'

/** What a sink counts: spans the collector accepted, and spans lost (queue full, or export failed). */
export interface SpanCounters {
  sent(count: number): void
  dropped(count: number): void
}

/** The batch limits (the SDK's defaults, but a 1 s delay where the SDK waits 5 s). */
const maxQueueSize = 2048
const maxExportBatchSize = 512
const scheduledDelayMillis = 1000
const exportTimeoutMillis = 10_000
/** The SDK's default bound on exports in flight at once (otlp-exporter-base getSharedConfigurationDefaults). */
const concurrencyLimit = 30

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

/** The SDK's OTLP/HTTP trace exporter with the JSON encoding, built from its public pieces around our transport. */
function otlpJsonExporter(endpoint: string): SpanExporter {
  const metrics = new ExporterMetrics<ReadableSpan[]>({
    componentType: 'otlp_http_json_span_exporter',
    metricsHelper: TraceExporterMetricsHelper,
    url: endpoint,
    meterProvider: undefined,
    responseAttributesFromError: () => ({}),
  })
  const delegate = createOtlpNetworkExportDelegate(
    { timeoutMillis: exportTimeoutMillis, concurrencyLimit, compression: 'none' },
    JsonTraceSerializer,
    metrics,
    new UndiciExporterTransport(endpoint, 'application/json'),
  )
  return new OTLPExporterBase(delegate)
}

/**
 * The spans of one collector endpoint: a BatchSpanProcessor over the OTLP/HTTP (JSON) exporter. Adding never
 * waits: with maxQueueSize spans queued a span is dropped and counted, and an export that fails drops its
 * batch, so an unreachable collector costs a bounded queue and one connection attempt per batch.
 */
export class OtlpSpanSink implements SpanSink {
  readonly #exporter: CountingExporter
  readonly #processor: BatchSpanProcessor
  readonly #resource: Resource
  readonly #counters: SpanCounters
  #closed: Promise<void> | undefined

  constructor(
    endpoint: string,
    resourceAttributes: Readonly<Record<string, string>>,
    counters: SpanCounters,
  ) {
    this.#counters = counters
    this.#resource = resourceFromAttributes(resourceAttributes)
    this.#exporter = new CountingExporter(otlpJsonExporter(endpoint), counters, endpoint)
    this.#processor = new BatchSpanProcessor(this.#exporter, {
      maxQueueSize,
      maxExportBatchSize,
      scheduledDelayMillis,
      exportTimeoutMillis,
    })
  }

  add(span: FinishedSpan): void {
    if (this.#closed !== undefined || this.#exporter.queued >= maxQueueSize) {
      this.#counters.dropped(1)
      return
    }
    this.#exporter.queued++
    this.#processor.onEnd(new ExportedSpan(span, this.#resource))
  }

  /** Exports what is queued, then closes the collector's connection; an export that fails is counted dropped, not thrown. */
  shutdown(): Promise<void> {
    this.#closed ??= this.#processor.shutdown().catch(() => undefined)
    return this.#closed
  }
}
