// DestinationRule spec (istio/api networking/v1alpha3/destination_rule.proto): a service's subsets and policies.

import { type RefinementCtx, z } from 'zod'
import { addError } from './add-error.ts'
import { clientTlsSettingsSchema } from './client-tls-settings.ts'
import { durationSchema, portNumberSchema, stringMapSchema, timeoutDurationSchema } from './fields.ts'
import { isDnsLabel, wildcardDomainProblem } from './host-name.ts'
import { localityLbSettingSchema, warmupSchema } from './locality-lb-setting.ts'
import { unsupported, warnUnsupported } from './unsupported.ts'

const INT32_MAX = 2147483647
const UINT32_MAX = 4294967295
/** Envoy's limit for a Maglev table (istio/api: "must be prime number less than 5000011"). */
const MAGLEV_TABLE_LIMIT = 5000011

/** A non-negative integer no larger than `max`; `negative` is Istio's message for a negative value. */
function count(negative: string, max = INT32_MAX) {
  return z.number().superRefine((n, ctx) => {
    if (!Number.isInteger(n)) addError(ctx, `expected an integer, got ${n}`)
    else if (n < 0) addError(ctx, negative)
    else if (n > max) addError(ctx, `${n} is out of range (at most ${max})`)
  })
}

/** Istio's ValidatePercent: an integer percentage. */
const percentSchema = z.number().superRefine((n, ctx) => {
  if (!Number.isInteger(n) || n < 0 || n > 100) addError(ctx, `percentage ${n} is not in range 0..100`)
})

function isPrime(n: number): boolean {
  if (n < 2) return false
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false
  return true
}

const httpCookieSchema = z.strictObject({
  name: z.string().superRefine((name, ctx) => {
    if (name === '') addError(ctx, 'name required for HttpCookie')
  }),
  path: z.string().optional(),
  ttl: durationSchema.optional(),
  attributes: z.array(z.strictObject({ name: z.string(), value: z.string().optional() })).default([]),
})

const consistentHashSchema = z
  .strictObject({
    httpHeaderName: z.string().optional(),
    httpCookie: httpCookieSchema.optional(),
    useSourceIp: z.boolean().optional(),
    httpQueryParameterName: z.string().optional(),
    ringHash: z
      .strictObject({ minimumRingSize: count('minimumRingSize must be non-negative', UINT32_MAX).optional() })
      .optional(),
    maglev: z
      .strictObject({
        tableSize: z.number().superRefine((size, ctx) => {
          if (!Number.isInteger(size) || size >= MAGLEV_TABLE_LIMIT || !isPrime(size)) {
            addError(ctx, `tableSize must be a prime number less than ${MAGLEV_TABLE_LIMIT} for maglev`)
          }
        }),
      })
      .partial()
      .optional(),
    /** Deprecated: ringHash.minimumRingSize. */
    minimumRingSize: count('minimumRingSize must be non-negative', UINT32_MAX).optional(),
  })
  .superRefine((hash, ctx) => {
    const keys = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const
    const set = keys.filter((k) => hash[k] !== undefined)
    if (set.length > 1) addError(ctx, `consistentHash may only specify one of ${keys.join(', ')}`, [set[1]])
    if (hash.ringHash !== undefined && hash.maglev !== undefined) {
      addError(ctx, 'consistentHash may only specify one of ringHash or maglev', ['maglev'])
    }
    if (hash.httpCookie !== undefined && hash.httpCookie.ttl === undefined) {
      addError(ctx, 'ttl required for HttpCookie', ['httpCookie'])
    }
  })

const SIMPLE_LB = [
  'UNSPECIFIED',
  'LEAST_CONN',
  'RANDOM',
  'PASSTHROUGH',
  'ROUND_ROBIN',
  'LEAST_REQUEST',
] as const

const loadBalancerSchema = z
  .strictObject({
    simple: z.enum(SIMPLE_LB).optional(),
    consistentHash: consistentHashSchema.optional(),
    localityLbSetting: localityLbSettingSchema.optional(),
    zoneAwareLbSetting: unsupported(),
    /** Deprecated: `warmup.duration`. */
    warmupDurationSecs: durationSchema.optional(),
    warmup: warmupSchema.optional(),
  })
  .superRefine((lb, ctx) => {
    if (lb.simple !== undefined && lb.consistentHash !== undefined) {
      addError(ctx, 'loadBalancer may only specify one of simple or consistentHash', ['consistentHash'])
    }
    if (lb.warmupDurationSecs !== undefined && lb.warmup !== undefined) {
      addError(ctx, 'only one of warmupDurationSecs or warmup can be set', ['warmup'])
    } else if (lb.simple === 'RANDOM' || lb.consistentHash !== undefined) {
      // Envoy's slow start exists for round robin and least request only.
      for (const field of ['warmup', 'warmupDurationSecs'] as const) {
        if (lb[field] !== undefined)
          warnUnsupported(ctx, [field], 'has no effect: warmup applies to ROUND_ROBIN and LEAST_REQUEST only')
      }
    }
  })

const connectionPoolSchema = z.strictObject({
  tcp: z
    .strictObject({
      maxConnections: count('max connections must be non-negative').optional(),
      connectTimeout: timeoutDurationSchema.optional(),
      tcpKeepalive: z
        .strictObject({ time: durationSchema.optional(), probes: unsupported(), interval: unsupported() })
        .optional(),
      maxConnectionDuration: timeoutDurationSchema.optional(),
      idleTimeout: durationSchema.optional(),
    })
    .optional(),
  http: z
    .strictObject({
      http1MaxPendingRequests: count('http1 max pending requests must be non-negative').optional(),
      http2MaxRequests: count('http2 max requests must be non-negative').optional(),
      maxRequestsPerConnection: count('max requests per connection must be non-negative').optional(),
      maxRetries: count('max retries must be non-negative').optional(),
      idleTimeout: timeoutDurationSchema.optional(),
      h2UpgradePolicy: z.enum(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']).optional(),
      useClientProtocol: z.boolean().optional(),
      maxConcurrentStreams: count('max concurrent streams must be non-negative').optional(),
      http2KeepAlive: unsupported(),
    })
    .optional(),
})

const outlierDetectionSchema = z
  .strictObject({
    consecutiveErrors: z
      .unknown()
      .superRefine((value, ctx) => {
        if (value !== undefined && value !== 0) {
          warnUnsupported(
            ctx,
            [],
            'is deprecated and ignored: use consecutiveGatewayErrors or consecutive5xxErrors instead',
          )
        }
      })
      .transform((): undefined => undefined)
      .optional(),
    splitExternalLocalOriginErrors: z.boolean().default(false),
    consecutiveLocalOriginFailures: count(
      'consecutiveLocalOriginFailures must be non-negative',
      UINT32_MAX,
    ).optional(),
    consecutiveGatewayErrors: count('consecutiveGatewayErrors must be non-negative', UINT32_MAX).optional(),
    consecutive5xxErrors: count('consecutive5xxErrors must be non-negative', UINT32_MAX).optional(),
    interval: timeoutDurationSchema.optional(),
    baseEjectionTime: timeoutDurationSchema.optional(),
    maxEjectionPercent: percentSchema.optional(),
    minHealthPercent: percentSchema.optional(),
    outlierDetectionHttpErrorCodes: z
      .array(
        z.number().superRefine((code, ctx) => {
          if (!Number.isInteger(code) || code < 100 || code > 599)
            addError(ctx, `HTTP status ${code} is not in range 100..599`)
        }),
      )
      .default([]),
  })
  .superRefine((od, ctx) => {
    if (!od.splitExternalLocalOriginErrors && (od.consecutiveLocalOriginFailures ?? 0) > 0) {
      addError(
        ctx,
        'outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false',
        ['consecutiveLocalOriginFailures'],
      )
    }
  })

const retryBudgetSchema = z.strictObject({
  percent: z
    .number()
    .superRefine((n, ctx) => {
      if (n < 0 || n > 100) addError(ctx, `percent ${n} is not in range 0..100`)
    })
    .optional(),
  minRetryConcurrency: count('minRetryConcurrency must be non-negative', UINT32_MAX).optional(),
  budgetInterval: unsupported(),
})

/** The parts of a traffic policy a port may override (istio/api TrafficPolicy.PortTrafficPolicy). */
const portTrafficPolicySchema = z.strictObject({
  port: z.strictObject({ number: portNumberSchema }),
  loadBalancer: loadBalancerSchema.optional(),
  connectionPool: connectionPoolSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  tls: clientTlsSettingsSchema.optional(),
})

const trafficPolicySchema = z
  .strictObject({
    loadBalancer: loadBalancerSchema.optional(),
    connectionPool: connectionPoolSchema.optional(),
    outlierDetection: outlierDetectionSchema.optional(),
    tls: clientTlsSettingsSchema.optional(),
    portLevelSettings: z.array(portTrafficPolicySchema).default([]),
    tunnel: unsupported(),
    proxyProtocol: unsupported(),
    retryBudget: retryBudgetSchema.optional(),
  })
  .superRefine((policy, ctx) => duplicatePorts(policy.portLevelSettings, ctx))

function duplicatePorts(
  settings: readonly { port: { number: number } }[],
  ctx: RefinementCtx<unknown>,
): void {
  const seen = new Set<number>()
  settings.forEach((s, i) => {
    if (seen.has(s.port.number)) {
      addError(ctx, `duplicate port level settings for port ${s.port.number}`, [
        'portLevelSettings',
        i,
        'port',
      ])
    }
    seen.add(s.port.number)
  })
}

const subsetSchema = z.strictObject({
  name: z.string().superRefine((name, ctx) => {
    if (name === '') addError(ctx, 'subset name cannot be empty')
    else if (!isDnsLabel(name)) addError(ctx, `subset name is invalid: '${name}'`)
  }),
  labels: stringMapSchema.default({}),
  trafficPolicy: trafficPolicySchema.optional(),
})

export const destinationRuleSpecSchema = z
  .strictObject({
    host: z.string().superRefine((host, ctx) => {
      const problem = wildcardDomainProblem(host)
      if (problem !== undefined) addError(ctx, problem)
    }),
    trafficPolicy: trafficPolicySchema.optional(),
    subsets: z.array(subsetSchema).default([]),
    exportTo: z.array(z.string()).default([]),
    workloadSelector: unsupported(),
  })
  .superRefine((rule, ctx) => {
    const seen = new Set<string>()
    rule.subsets.forEach((subset, index) => {
      if (seen.has(subset.name))
        addError(ctx, `duplicate subset names: ${subset.name}`, ['subsets', index, 'name'])
      seen.add(subset.name)
    })
  })

export type DestinationRuleSpec = z.infer<typeof destinationRuleSpecSchema>
export type Subset = DestinationRuleSpec['subsets'][number]
export type TrafficPolicy = NonNullable<DestinationRuleSpec['trafficPolicy']>
export type PortTrafficPolicy = TrafficPolicy['portLevelSettings'][number]
export type LoadBalancerSettings = NonNullable<TrafficPolicy['loadBalancer']>
export type ConnectionPoolSettings = NonNullable<TrafficPolicy['connectionPool']>
export type OutlierDetectionSettings = NonNullable<TrafficPolicy['outlierDetection']>
export type RetryBudgetSettings = NonNullable<TrafficPolicy['retryBudget']>
