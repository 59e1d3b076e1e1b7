// Telemetry spec (istio/api telemetry/v1alpha1/telemetry.proto, served as telemetry.istio.io/v1 and v1alpha1): metrics, tracing and access logging of the workloads it selects.

import { z } from 'zod'
import { parseAccessLogFilter } from '../../telemetry/access-log-filter.ts'
import { istioMetrics } from '../../telemetry/telemetry-policy.ts'
import { addError } from './add-error.ts'
import { stringMapSchema } from './fields.ts'
import { unsupported, warnUnsupported } from './unsupported.ts'

/** WorkloadMode: CLIENT is the workload's outbound traffic, SERVER its inbound; CLIENT_AND_SERVER (the default) both. */
export const WORKLOAD_MODES = ['CLIENT_AND_SERVER', 'CLIENT', 'SERVER'] as const

export type WorkloadMode = (typeof WORKLOAD_MODES)[number]

const workloadModeSchema = z.enum(WORKLOAD_MODES).default('CLIENT_AND_SERVER')

/** A ProviderRef; Istio's validation: "providers.name may not be empty". */
const providerRefSchema = z.strictObject({
  name: z.string().superRefine((name, ctx) => {
    if (name === '') addError(ctx, 'providers.name may not be empty')
  }),
})

/**
 * A tagOverrides value is a CEL expression; only a string literal (`"'v1'"` or `'"v1"'`) is read, and the
 * output is the literal's text. Returns undefined for anything else.
 */
export function celStringLiteral(expression: string): string | undefined {
  const text = expression.trim()
  if (text.length < 2) return undefined
  const quote = text[0]
  if ((quote !== "'" && quote !== '"') || text[text.length - 1] !== quote) return undefined
  const body = text.slice(1, -1)
  // Escapes and embedded quotes make it more than a plain literal; those are not read.
  if (body.includes('\\') || body.includes(quote)) return undefined
  return body
}

/** MetricsOverrides.TagOverride; Istio's validation: UPSERT needs a value, REMOVE takes none. */
const tagOverrideSchema = z
  .strictObject({
    operation: z.enum(['UPSERT', 'REMOVE']).default('UPSERT'),
    value: z.string().optional(),
  })
  .superRefine((tag, ctx) => {
    if (tag.operation === 'UPSERT' && (tag.value ?? '') === '')
      addError(ctx, 'tagOverrides.value must be set when operation is UPSERT', ['value'])
    else if (tag.operation === 'REMOVE' && (tag.value ?? '') !== '')
      addError(ctx, 'tagOverrides.value may only be set when operation is UPSERT', ['value'])
    else if (tag.operation === 'UPSERT' && celStringLiteral(tag.value ?? '') === undefined)
      warnUnsupported(
        ctx,
        [],
        `is a CEL expression ('${tag.value}'): only string literals (such as "'v1'") are supported yet, so this tag override is ignored`,
      )
  })
  .transform((tag) => ({
    operation: tag.operation,
    value: tag.operation === 'UPSERT' ? (celStringLiteral(tag.value ?? '') ?? '') : '',
  }))

/** MetricSelector: one standard metric (ALL_METRICS when absent) or a custom metric, and the mode. */
const metricSelectorSchema = z
  .strictObject({
    metric: z.enum(['ALL_METRICS', ...istioMetrics]).optional(),
    /** Kept (an override of a custom metric must not become one of every metric); compile warns and skips it. */
    customMetric: z.string().optional(),
    mode: workloadModeSchema,
  })
  .superRefine((match, ctx) => {
    if (match.metric !== undefined && match.customMetric !== undefined)
      addError(ctx, 'only one of metric or customMetric can be set')
    if (match.customMetric === '') addError(ctx, 'customMetric may not be empty', ['customMetric'])
  })

const metricsOverridesSchema = z.strictObject({
  match: metricSelectorSchema.optional(),
  /** Absent: inherit from the parent level (Istio's BoolValue). */
  disabled: z.boolean().optional(),
  tagOverrides: z.record(z.string(), tagOverrideSchema).default({}),
})

const metricsSchema = z.strictObject({
  providers: z.array(providerRefSchema).default([]),
  overrides: z.array(metricsOverridesSchema).default([]),
  reportingInterval: unsupported(),
})

/** Tracing.CustomTag: exactly one of literal, environment, header (Istio's validation on each). */
const customTagSchema = z
  .strictObject({
    literal: z.strictObject({ value: z.string() }).optional(),
    environment: z.strictObject({ name: z.string(), defaultValue: z.string().default('') }).optional(),
    header: z.strictObject({ name: z.string(), defaultValue: z.string().default('') }).optional(),
    formatter: unsupported(),
  })
  .superRefine((tag, ctx) => {
    const kinds = [tag.literal, tag.environment, tag.header].filter((kind) => kind !== undefined)
    if (kinds.length > 1) addError(ctx, 'only one of literal, environment or header can be set')
    if (tag.literal?.value === '') addError(ctx, 'literal tag value may not be empty', ['literal', 'value'])
    if (tag.environment?.name === '')
      addError(ctx, 'environment tag name may not be empty', ['environment', 'name'])
    if (tag.header?.name === '') addError(ctx, 'header tag name may not be empty', ['header', 'name'])
  })

const tracingSchema = z.strictObject({
  match: z.strictObject({ mode: workloadModeSchema }).optional(),
  providers: z.array(providerRefSchema).default([]),
  /** Absent: inherit (the bootstrap's samplingPercent at the top). */
  randomSamplingPercentage: z
    .number()
    .superRefine((percent, ctx) => {
      if (percent < 0 || percent > 100)
        addError(ctx, 'randomSamplingPercentage must be in range [0.0, 100.0]')
    })
    .optional(),
  disableSpanReporting: z.boolean().optional(),
  /** Present (even empty): replaces the parent's tags. */
  customTags: z.record(z.string(), customTagSchema).optional(),
  useRequestIdForTraceSampling: unsupported(),
  enableIstioTags: unsupported(),
  disableContextPropagation: unsupported(),
})

const accessLoggingSchema = z.strictObject({
  match: z.strictObject({ mode: workloadModeSchema }).optional(),
  providers: z.array(providerRefSchema).default([]),
  /** Absent: inherit. */
  disabled: z.boolean().optional(),
  /**
   * A CEL expression over Envoy's attributes. The access log understands a subset (parseAccessLogFilter);
   * an expression outside it is an error, so a filter never silently logs more or less than it says.
   */
  filter: z
    .strictObject({
      expression: z.string().superRefine((expression, ctx) => {
        const parsed = parseAccessLogFilter(expression)
        if ('error' in parsed) addError(ctx, `access log filter not supported: ${parsed.error}`)
      }),
    })
    .optional(),
})

/** A PolicyTargetReference; kept so that a targeted Telemetry is not read as namespace-wide (compile warns). */
const targetRefSchema = z.unknown()

export const telemetrySpecSchema = z
  .strictObject({
    selector: z.strictObject({ matchLabels: stringMapSchema.default({}) }).optional(),
    targetRef: targetRefSchema.optional(),
    targetRefs: z.array(targetRefSchema).optional(),
    tracing: z.array(tracingSchema).default([]),
    metrics: z.array(metricsSchema).default([]),
    accessLogging: z.array(accessLoggingSchema).default([]),
  })
  .superRefine((spec, ctx) => {
    const targeted = spec.targetRef !== undefined || (spec.targetRefs ?? []).length > 0
    if (targeted && Object.keys(spec.selector?.matchLabels ?? {}).length > 0)
      addError(ctx, 'only one of selector, targetRef or targetRefs can be set')
    if (spec.targetRef !== undefined && spec.targetRefs !== undefined)
      addError(ctx, 'only one of targetRef or targetRefs can be set')
  })

export type TelemetrySpec = z.infer<typeof telemetrySpecSchema>
