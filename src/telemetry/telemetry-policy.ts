// What to observe for this workload, per traffic direction: the bootstrap's `telemetry` block (the mesh default) overridden by Telemetry resources.

/**
 * Istio's standard metrics as the Telemetry API names them (istio/api telemetry/v1alpha1/telemetry.proto,
 * MetricSelector.IstioMetric), and the Prometheus name each one is exported as.
 */
export const istioMetricNames = {
  REQUEST_COUNT: 'istio_requests_total',
  REQUEST_DURATION: 'istio_request_duration_milliseconds',
  REQUEST_SIZE: 'istio_request_bytes',
  RESPONSE_SIZE: 'istio_response_bytes',
  GRPC_REQUEST_MESSAGES: 'istio_request_messages_total',
  GRPC_RESPONSE_MESSAGES: 'istio_response_messages_total',
  TCP_SENT_BYTES: 'istio_tcp_sent_bytes_total',
  TCP_RECEIVED_BYTES: 'istio_tcp_received_bytes_total',
  TCP_OPENED_CONNECTIONS: 'istio_tcp_connections_opened_total',
  TCP_CLOSED_CONNECTIONS: 'istio_tcp_connections_closed_total',
} as const

export type IstioMetric = keyof typeof istioMetricNames

export const istioMetrics = Object.keys(istioMetricNames) as IstioMetric[]

/** A tagOverrides entry: UPSERT sets the label to a literal value, REMOVE drops the label. */
export interface TagOverride {
  readonly tag: string
  readonly operation: 'UPSERT' | 'REMOVE'
  /** The literal value for UPSERT ('' for REMOVE). */
  readonly value: string
}

export interface MetricPolicy {
  readonly disabled: boolean
  /** Applied in order to the metric's standard label set. */
  readonly tagOverrides: readonly TagOverride[]
}

/**
 * An Envoy attribute a filter reads (envoy docs: intro/arch_overview/advanced/attributes), e.g.
 * `response.code`, `request.headers` with `key` the header name, `xds.cluster_name`.
 */
export interface FilterAttribute {
  readonly name: string
  /** The map key of `request.headers['x']` / `response.headers['x']` (lowercase). */
  readonly key?: string
}

export type FilterLiteral = string | number | boolean

/** A node of a parsed CEL access-log filter: plain data, evaluated by access-log-filter.ts. */
export type FilterNode =
  | { readonly kind: 'and' | 'or'; readonly left: FilterNode; readonly right: FilterNode }
  | { readonly kind: 'not'; readonly operand: FilterNode }
  | {
      readonly kind: 'compare'
      readonly op: '==' | '!=' | '<' | '<=' | '>' | '>='
      readonly attribute: FilterAttribute
      readonly value: FilterLiteral
    }
  | { readonly kind: 'in'; readonly attribute: FilterAttribute; readonly values: readonly FilterLiteral[] }
  | {
      readonly kind: 'string'
      readonly fn: 'startsWith' | 'endsWith' | 'contains'
      readonly attribute: FilterAttribute
      readonly value: string
    }
  /** A boolean attribute on its own (`connection.mtls`), or `has(attribute)` (`kind: 'has'`). */
  | { readonly kind: 'attribute' | 'has'; readonly attribute: FilterAttribute }
  | { readonly kind: 'literal'; readonly value: boolean }

/** An access-log filter (Telemetry accessLogging[].filter.expression), compiled to plain data. */
export interface AccessLogFilter {
  /** The CEL expression as written. */
  readonly expression: string
  /** The expression parsed (parseAccessLogFilter). */
  readonly root: FilterNode
}

export interface AccessLogPolicy {
  /** A file path (`/dev/stdout` by default). */
  readonly path: string
  readonly encoding: 'TEXT' | 'JSON'
  /** Only entries the filter accepts are written; undefined: all. */
  readonly filter: AccessLogFilter | undefined
}

/** A customTags entry: the span attribute `tag` gets a literal, an environment variable or a request header. */
export type CustomTag =
  | { readonly tag: string; readonly kind: 'literal'; readonly value: string }
  | {
      readonly tag: string
      readonly kind: 'environment'
      readonly name: string
      readonly defaultValue: string
    }
  | { readonly tag: string; readonly kind: 'header'; readonly name: string; readonly defaultValue: string }

export interface TracingPolicy {
  /** OTLP/HTTP traces endpoint (`http://host:4318/v1/traces`). */
  readonly otlpEndpoint: string
  /** Percent of requests without an upstream sampling decision that start a sampled trace (0..100). */
  readonly samplingPercent: number
  readonly propagation: readonly ('W3C' | 'B3')[]
  readonly customTags: readonly CustomTag[]
  /** Spans are not reported (the trace context still propagates). */
  readonly disableSpanReporting: boolean
}

/** What to observe for one direction: inbound is Istio's SERVER mode, outbound its CLIENT mode. */
export interface DirectionTelemetry {
  readonly metrics: Readonly<Record<IstioMetric, MetricPolicy>>
  /** undefined: no access log for this direction. */
  readonly accessLog: AccessLogPolicy | undefined
  /** undefined: no tracing for this direction (the OpenTelemetry SDK is not loaded when neither has it). */
  readonly tracing: TracingPolicy | undefined
}

export interface TelemetryPolicy {
  readonly inbound: DirectionTelemetry
  readonly outbound: DirectionTelemetry
}

/** The bootstrap's `telemetry` block (Istio's MeshConfig accessLogFile/accessLogEncoding and default tracing). */
export interface MeshTelemetryDefaults {
  readonly accessLog?: { readonly path: string; readonly encoding: 'TEXT' | 'JSON' } | undefined
  readonly tracing?:
    | {
        readonly otlpEndpoint: string
        readonly samplingPercent: number
        readonly propagation: readonly ('W3C' | 'B3')[]
      }
    | undefined
}

const enabled: MetricPolicy = Object.freeze({ disabled: false, tagOverrides: Object.freeze([]) })

/** The policy when no Telemetry resource applies: every standard metric on, access log and tracing as the bootstrap says. */
export function meshTelemetryPolicy(mesh: MeshTelemetryDefaults | undefined): TelemetryPolicy {
  const metrics = Object.fromEntries(istioMetrics.map((m) => [m, enabled])) as Record<
    IstioMetric,
    MetricPolicy
  >
  const accessLog: AccessLogPolicy | undefined =
    mesh?.accessLog === undefined ? undefined : { ...mesh.accessLog, filter: undefined }
  const tracing: TracingPolicy | undefined =
    mesh?.tracing === undefined ? undefined : { ...mesh.tracing, customTags: [], disableSpanReporting: false }
  const direction: DirectionTelemetry = { metrics, accessLog, tracing }
  return { inbound: direction, outbound: direction }
}
