// The bootstrap file (README, "Bootstrap"; its place among the layers: docs/ARCHITECTURE.md): who this proxy is, where it listens, and where its Istio resources are.

import { isIP } from 'node:net'
import { z } from 'zod'
import { durationSchema, stringMapSchema } from '../config/istio/fields.ts'
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
  outbound: listenerSchema(15001),
  inbound: listenerSchema(15006),
  admin: z
    .strictObject({
      port: listenPortSchema.default(15000),
      address: listenAddressSchema.default('127.0.0.1'),
    })
    .prefault({}),
  stats: listenerSchema(15090),
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
  capture: z.enum(['none', 'iptables', 'tproxy']).default('none'),
  /** Files and directories of Istio YAML. */
  resources: z.array(nonEmptyStringSchema).default([]),
  tls: tlsSchema.optional(),
  telemetry: telemetrySchema.optional(),
  /** How long SIGTERM waits for in-flight requests (Istio's proxy default is 5s). */
  terminationDrainDuration: durationSchema.default('5s'),
  /**
   * How long protocol sniffing on undeclared ports waits for the client's first bytes before serving the
   * connection as opaque TCP (Istio's meshConfig.protocolDetectionTimeout); 0s waits (Istio's default).
   */
  protocolDetectionTimeout: durationSchema.default('0s'),
  /** Resolvers, refresh rate and address family for DNS-resolved clusters; absent: defaultDnsSettings. */
  dns: dnsSchema.optional(),
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

/** A loaded bootstrap: defaults applied, `resources` and `tls` paths absolute, and the file it came from. */
export interface Bootstrap extends BootstrapFile {
  /** The bootstrap file's path, as given to loadBootstrap. */
  readonly file: string
}
