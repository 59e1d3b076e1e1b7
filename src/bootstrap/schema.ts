// The bootstrap file (README, "Bootstrap"; its place among the layers: docs/ARCHITECTURE.md): who this proxy is, where it listens, and where its Istio resources are.

import { isIP } from 'node:net'
import { z } from 'zod'
import { parseDurationMs } from '../config/duration.ts'
import { durationSchema, stringMapSchema, timeoutDurationSchema } from '../config/istio/fields.ts'
import type { ConfigMessage } from '../config/messages.ts'
import { appProbersSchema } from './app-probers.ts'
import { dnsSchema } from './dns.ts'
import { dnsProxySchema } from './dns-proxy.ts'
import { limitsSchema } from './limits.ts'
import { liveSchema } from './live.ts'
import { overloadSchema } from './overload.ts'
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
  /** Captured outbound traffic (Istio's virtualOutbound); bound only under `capture: iptables | tproxy`. */
  outbound: listenerSchema(15001),
  /** Captured inbound traffic (Istio's virtualInbound); bound only under `capture: iptables | tproxy`. */
  inbound: listenerSchema(15006),
  admin: z
    .strictObject({
      port: listenPortSchema.default(15000),
      address: listenAddressSchema.default('127.0.0.1'),
    })
    .prefault({}),
  /** Istio's Prometheus port (15090, on every address as istio-proxy binds it): GET /stats/prometheus. */
  stats: z
    .strictObject({
      port: listenPortSchema.default(15090),
      address: listenAddressSchema.default('0.0.0.0'),
    })
    .prefault({}),
  health: listenerSchema(15021),
  /** Istio's DNS proxy (UDP and TCP): src/bootstrap/dns-proxy.ts. */
  dns: dnsProxySchema,
})

const TLS_FILE_KEYS = ['certChain', 'privateKey', 'rootCert'] as const

/** Where the workload certificate comes from: the platform's files (watched), or a CA the proxy issues from. */
export type BootstrapTls =
  | { readonly certChain: string; readonly privateKey: string; readonly rootCert: string }
  | { readonly ca: string; readonly ttl: string }

/**
 * `tls`: either the three files (Istio's names; the platform writes and rotates them) or `ca`, a CA
 * directory (`outrigger ca init`) the proxy issues its own certificate from, renewed at half of `ttl`.
 */
const tlsSchema = z
  .strictObject({
    certChain: nonEmptyStringSchema.optional(),
    privateKey: nonEmptyStringSchema.optional(),
    rootCert: nonEmptyStringSchema.optional(),
    ca: nonEmptyStringSchema.optional(),
    ttl: durationSchema.optional(),
  })
  .superRefine((tls, ctx) => {
    const files = TLS_FILE_KEYS.filter((key) => tls[key] !== undefined)
    if (tls.ca !== undefined) {
      for (const key of files) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: "cannot be given with 'tls.ca': either the three files or a CA to issue from",
        })
      }
      if (tls.ttl !== undefined && parseDurationMs(tls.ttl) < 1000)
        ctx.addIssue({ code: 'custom', path: ['ttl'], message: `'${tls.ttl}' is shorter than 1s` })
      return
    }
    if (tls.ttl !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['ttl'],
        message: "is used only with 'tls.ca' (built-in issuing)",
      })
    }
    if (files.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message:
          "needs either 'certChain', 'privateKey' and 'rootCert' (files the platform writes) or 'ca' (a CA directory to issue from)",
      })
      return
    }
    for (const key of TLS_FILE_KEYS) {
      if (tls[key] === undefined)
        ctx.addIssue({ code: 'invalid_type', expected: 'string', input: undefined, path: [key], message: '' })
    }
  })
  .transform(
    (tls): BootstrapTls =>
      tls.ca !== undefined
        ? { ca: tls.ca, ttl: tls.ttl ?? '24h' }
        : { certChain: tls.certChain ?? '', privateKey: tls.privateKey ?? '', rootCert: tls.rootCert ?? '' },
  )

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
  /**
   * `none`: listeners from the Sidecar resource only; `iptables` (REDIRECT) or `tproxy`: the outbound and
   * inbound capture listeners take the pod's traffic and route it by its original destination.
   */
  capture: z.enum(['none', 'iptables', 'tproxy']).default('none'),
  /** Files and directories of Istio YAML. */
  resources: z.array(nonEmptyStringSchema).default([]),
  /** The workload certificate (Istio's file names) or the CA to issue it from; paths relative to the bootstrap file. */
  tls: tlsSchema.optional(),
  /** Istio's MeshConfig defaults for telemetry: the access log and tracing (each off when absent); Telemetry resources override them. */
  telemetry: telemetrySchema.optional(),
  /**
   * How long a SIGTERM drain lasts (Istio's ProxyConfig terminationDrainDuration, 5s by default): inbound
   * listeners finish their in-flight requests while outbound ones keep serving the app, then the proxy exits.
   */
  terminationDrainDuration: durationSchema.default('5s'),
  /**
   * Istio's EXIT_ON_ZERO_ACTIVE_CONNECTIONS (the environment variable of that name overrides it): a SIGTERM
   * drain ends once no connection is active (checked each second after `minimumDrainDuration`) instead of
   * after `terminationDrainDuration`.
   */
  exitOnZeroActiveConnections: z.boolean().default(false),
  /** Istio's MINIMUM_DRAIN_DURATION (the environment variable overrides it): the drain before the first check. */
  minimumDrainDuration: durationSchema.default('5s'),
  /**
   * The app's own kubelet probes, served on the health port as Istio's status port serves them: the
   * ISTIO_KUBE_APP_PROBERS map (the environment variable's entries are added, and win), for standalone use.
   */
  appProbers: appProbersSchema.default({}),
  /**
   * How long protocol sniffing on undeclared ports waits for the client's first bytes before serving the
   * connection as opaque TCP (Istio's meshConfig.protocolDetectionTimeout); 0s waits (Istio's default).
   */
  protocolDetectionTimeout: durationSchema.default('0s'),
  /** Resolvers, refresh rate and address family for DNS-resolved clusters; absent: defaultDnsSettings. */
  dns: dnsSchema.optional(),
  /** Istio's root namespace (meshConfig.rootNamespace): a PeerAuthentication there without a selector is the mesh-wide policy. */
  rootNamespace: z.string().default('istio-system'),
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
  /**
   * How often a RequestAuthentication's `jwksUri` key set is fetched again (istiod's
   * PILOT_JWT_PUB_KEY_REFRESH_INTERVAL, 20m by default); a failed fetch keeps the last key set.
   */
  jwksRefreshInterval: timeoutDurationSchema.default('20m'),
  /** Local rate limits (Istio has no resource for them): token buckets per listener port and/or route. */
  rateLimits: z.array(rateLimitSchema).default([]),
  /** Header sizes and counts, timeouts, connection caps and HTTP/2 session bounds (src/bootstrap/limits.ts). */
  limits: limitsSchema,
  /** The overload manager: heap and event-loop pressure shed requests and connections (src/bootstrap/overload.ts). */
  overload: overloadSchema,
  /** The live view (`outrigger stat|top`, the dashboard's charts): off by default (src/bootstrap/live.ts). */
  live: liveSchema,
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
