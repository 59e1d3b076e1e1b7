// A traced request's span as plain data, built when the request ends and handed to the span exporter.

/** SERVER for an inbound request, CLIENT for an outbound one (Envoy's OpenTelemetry tracer: ingress and egress). */
export type FinishedSpanKind = 'SERVER' | 'CLIENT'

export interface FinishedSpan {
  readonly name: string
  readonly kind: FinishedSpanKind
  readonly traceId: string
  readonly spanId: string
  /** '' for a root span. */
  readonly parentSpanId: string
  /** Wall-clock times in milliseconds since the epoch (fractions kept). */
  readonly startMs: number
  readonly endMs: number
  /** Envoy's span tags (string values, as Envoy sets them) and the custom tags. */
  readonly attributes: Readonly<Record<string, string>>
  /** Envoy's `error` tag: no response code, or a 5xx one. */
  readonly error: boolean
}

/** Where finished spans go: the OpenTelemetry exporter of one collector endpoint. */
export interface SpanSink {
  add(span: FinishedSpan): void
  /** Exports what is queued and stops. */
  shutdown(): Promise<void>
}
