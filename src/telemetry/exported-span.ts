// A finished span as the OpenTelemetry SDK's processors and exporters read one (its ReadableSpan).

import {
  type Attributes,
  type HrTime,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  TraceFlags,
} from '@opentelemetry/api'
import { millisToHrTime } from '@opentelemetry/core'
import type { Resource } from '@opentelemetry/resources'
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base'
import type { FinishedSpan } from './finished-span.ts'

const scope = { name: 'outrigger' }

/** A FinishedSpan as the SDK's processors and exporters read a span. */
export class ExportedSpan implements ReadableSpan {
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
    this.startTime = millisToHrTime(span.startMs)
    this.endTime = millisToHrTime(span.endMs)
    this.duration = millisToHrTime(span.endMs - span.startMs)
    // Envoy's OpenTelemetry span marks the `error` tag as an error status.
    this.status = { code: span.error ? SpanStatusCode.ERROR : SpanStatusCode.UNSET }
    this.attributes = span.attributes
    this.resource = resource
  }

  spanContext(): SpanContext {
    return this.#context
  }
}
