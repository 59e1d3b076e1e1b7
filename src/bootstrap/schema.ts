// The bootstrap file (README, "Bootstrap"; its place among the layers: docs/ARCHITECTURE.md): who this proxy is, where it listens, and where its Istio resources are.

import { isIP } from 'node:net'
import { z } from 'zod'
import { durationSchema, stringMapSchema } from '../config/istio/fields.ts'
import { warnUnsupported } from '../config/istio/unsupported.ts'
import type { ConfigMessage } from '../config/messages.ts'
import { dnsSchema } from './dns.ts'
import { rateLimitSchema } from './rate-limits.ts'

/** Listener ports may be 0 (the OS picks a free port), which tests use. */
const listenPortSchema = z.number().superRefine((port, ctx) => {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `port number ${port} must be in the range 0..65535` })
  }
})

const listenAddressSchema = z.string().superRefine((address, ctx) => {
  if (isIP(address) === 0) ctx.addIssue({ code: 'custom', message: `'${address}' is not a valid IP address` })
})

const nonEmptyStringSchema = z.string().superRefine((text, ctx) => {
  if (text === '') ctx.addIssue({ code: 'custom', message: 'must not be empty' })
})

/** A listener whose feature is not built yet: no defaults, so only a listener written in the file counts. */
const unbuiltListenerSchema = z.strictObject({
  port: listenPortSchema.optional(),
  address: listenAddressSchema.optional(),
})

/**
 * A key whose feature is not built yet (`schema` has no defaults): its value is still checked, a present
 * value is a warning naming the key (`file:line: warning: field '<key>' <reason>`), and the loaded
 * bootstrap never carries it.
 */
function notBuiltYet<T extends z.ZodType>(schema: T, reason: string) {
  return schema
    .optional()
    .superRefine((value, ctx) => {
      if (value !== undefined) warnUnsupported(ctx, [], reason)
    })
    .transform((): undefined => undefined)
}

const captureNeeded = 'is used only with traffic capture, which is not built yet, and is ignored'

function listenerSchema(defaultPort: number) {
  return z
    .strictObject({ port: listenPortSchema.default(defaultPort), address: listenAddressSchema.optional() })
    .prefault({})
}

const nodeSchema = z.strictObject({
  workload: nonEmptyStringSchema.default('default'),
  namespace: nonEmptyStringSchema.default('default'),
  serviceAccount: nonEmptyStringSchema.default('default'),
  labels: stringMapSchema.default({}),
  cluster: nonEmptyStringSchema.default('Kubernetes'),
  trustDomain: nonEmptyStringSchema.default('cluster.local'),
  /** `region/zone/subzone` of this workload (Istio reads it from the node's topology labels). */
  locality: z
    .string()
    .superRefine((locality, ctx) => {
      if (locality.split('/').length > 3)
        ctx.addIssue({ code: 'custom', message: `'${locality}' is not region/zone/subzone` })
    })
    .default(''),
})

const listenersSchema = z.strictObject({
  outbound: notBuiltYet(unbuiltListenerSchema, captureNeeded),
  inbound: notBuiltYet(unbuiltListenerSchema, captureNeeded),
  admin: z
    .strictObject({
      port: listenPortSchema.default(15000),
      address: listenAddressSchema.default('127.0.0.1'),
    })
    .prefault({}),
  stats: notBuiltYet(
    unbuiltListenerSchema,
    'is not built yet and is ignored: nothing serves Prometheus stats on it yet',
  ),
  health: listenerSchema(15021),
})

const tlsSchema = z.strictObject({
  certChain: nonEmptyStringSchema,
  privateKey: nonEmptyStringSchema,
  rootCert: nonEmptyStringSchema,
})

const telemetrySchema = z.strictObject({
  accessLog: z
    .strictObject({
      path: nonEmptyStringSchema.default('/dev/stdout'),
      encoding: z.enum(['TEXT', 'JSON']).default('TEXT'),
    })
    .optional(),
  tracing: z
    .strictObject({
      otlpEndpoint: z.string().superRefine((url, ctx) => {
        if (!URL.canParse(url)) ctx.addIssue({ code: 'custom', message: `'${url}' is not a valid URL` })
      }),
      samplingPercent: z
        .number()
        .superRefine((percent, ctx) => {
          if (percent < 0 || percent > 100)
            ctx.addIssue({ code: 'custom', message: 'must be between 0 and 100' })
        })
        .default(1),
      propagation: z.array(z.enum(['W3C', 'B3'])).default(['W3C', 'B3']),
    })
    .optional(),
})

export const bootstrapSchema = z.strictObject({
  node: nodeSchema.prefault({}),
  listeners: listenersSchema.prefault({}),
  /** Only `none` works: a capture mode that cannot work is an error rather than a proxy that gets no traffic. */
  capture: z
    .enum(['none', 'iptables', 'tproxy'])
    .superRefine((mode, ctx) => {
      if (mode !== 'none')
        ctx.addIssue({
          code: 'custom',
          message: `capture mode '${mode}' is not built yet: only 'none' works (listeners from the Sidecar resource)`,
        })
    })
    .default('none'),
  /** Files and directories of Istio YAML. */
  resources: z.array(nonEmptyStringSchema).default([]),
  /** The workload certificate (Istio's file names); paths relative to the bootstrap file. */
  tls: tlsSchema.optional(),
  telemetry: notBuiltYet(
    telemetrySchema,
    'is not built yet and is ignored: no access log or traces are written yet',
  ),
  /** How long SIGTERM waits for in-flight requests (Istio's proxy default is 5s). */
  terminationDrainDuration: durationSchema.default('5s'),
  /**
   * How long protocol sniffing on undeclared ports waits for the client's first bytes before serving the
   * connection as opaque TCP (Istio's meshConfig.protocolDetectionTimeout); 0s waits (Istio's default).
   */
  protocolDetectionTimeout: durationSchema.default('0s'),
  /** Resolvers, refresh rate and address family for DNS-resolved clusters; absent: defaultDnsSettings. */
  dns: dnsSchema.optional(),
  /**
   * Istio's meshConfig.pathNormalization: how request paths are normalized before routing and forwarding
   * (src/http/path-normalization.ts). BASE (Istio's default) is Envoy's normalize_path.
   */
  pathNormalization: z
    .strictObject({
      normalization: z
        .enum(['DEFAULT', 'NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'])
        .default('BASE'),
    })
    .prefault({}),
  /** Local rate limits (Istio has no resource for them): token buckets per listener port and/or route. */
  rateLimits: z.array(rateLimitSchema).default([]),
  /** Worker processes. */
  concurrency: z
    .number()
    .superRefine((workers, ctx) => {
      if (!Number.isInteger(workers) || workers < 1)
        ctx.addIssue({ code: 'custom', message: 'must be an integer ≥ 1' })
    })
    .default(1),
})

/** The bootstrap file's contents as written, with defaults applied. */
export type BootstrapFile = z.infer<typeof bootstrapSchema>

/**
 * A loaded bootstrap: defaults applied, `resources` paths absolute, warnings about its keys, and the file
 * it came from.
 */
export interface Bootstrap extends BootstrapFile {
  /** The bootstrap file's path, as given to loadBootstrap. */
  readonly file: string
  /** Warnings about the bootstrap file (keys accepted but not built yet), as `file:line` messages. */
  readonly warnings?: readonly ConfigMessage[]
}
