// The app's kubelet probes as Istio's injector hands them to the sidecar (ISTIO_KUBE_APP_PROBERS, or the bootstrap's `appProbers`): a map from a health-port path to the original probe.

import { z } from 'zod'

/**
 * The paths Istio's status port takes over (pkg/istio-agent/status/server.go, appProberPattern):
 * `/app-health/<container>/livez|readyz|startupz` and `/app-lifecycle/<container>/prestopz|poststartz`.
 */
export const APP_PROBER_PATH =
  /^\/(app-health|app-lifecycle)\/[^/]+\/(livez|readyz|startupz|prestopz|poststartz)$/

/** Istio requires an int port here (validateAppKubeProber): the injector resolves named ports first. */
const probePortSchema = z.number().superRefine((port, ctx) => {
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    ctx.addIssue({ code: 'custom', message: `port ${port} must be an integer in 1..65535` })
})

/** Kubernetes' HTTPGetAction (k8s.io/api core/v1), as Istio's apimirror copies it. */
const httpGetSchema = z.strictObject({
  path: z.string().default('/'),
  port: probePortSchema,
  /** The address to call; Istio calls the pod (localhost here, 127.0.0.1). */
  host: z.string().optional(),
  scheme: z.enum(['HTTP', 'HTTPS']).default('HTTP'),
  httpHeaders: z.array(z.strictObject({ name: z.string(), value: z.string() })).default([]),
})

const tcpSocketSchema = z.strictObject({ port: probePortSchema, host: z.string().optional() })

const grpcSchema = z.strictObject({ port: probePortSchema, service: z.string().optional() })

/** One probe: exactly one of httpGet, tcpSocket or grpc, and its timeout (Kubernetes' default is 1 s). */
const appProberSchema = z
  .strictObject({
    httpGet: httpGetSchema.optional(),
    tcpSocket: tcpSocketSchema.optional(),
    grpc: grpcSchema.optional(),
    timeoutSeconds: z.number().int().min(0).optional(),
  })
  .superRefine((prober, ctx) => {
    const kinds = [prober.httpGet, prober.tcpSocket, prober.grpc].filter((k) => k !== undefined).length
    if (kinds !== 1)
      ctx.addIssue({
        code: 'custom',
        message: 'invalid prober type, must be one of type httpGet, tcpSocket or grpc',
      })
  })
  .transform((prober): AppProber => {
    // Kubernetes defaults timeoutSeconds to 1; Istio's injector copies the container's value.
    const timeoutMs = (prober.timeoutSeconds || 1) * 1000
    if (prober.httpGet !== undefined) return { kind: 'httpGet', timeoutMs, ...prober.httpGet }
    if (prober.tcpSocket !== undefined) return { kind: 'tcpSocket', timeoutMs, ...prober.tcpSocket }
    // superRefine has checked that exactly one kind is present.
    const { port, service } = prober.grpc as { port: number; service?: string }
    return { kind: 'grpc', timeoutMs, port, service: service ?? '' }
  })

export type AppProber =
  | {
      readonly kind: 'httpGet'
      readonly timeoutMs: number
      readonly path: string
      readonly port: number
      readonly host?: string
      readonly scheme: 'HTTP' | 'HTTPS'
      readonly httpHeaders: readonly { readonly name: string; readonly value: string }[]
    }
  | { readonly kind: 'tcpSocket'; readonly timeoutMs: number; readonly port: number; readonly host?: string }
  | { readonly kind: 'grpc'; readonly timeoutMs: number; readonly port: number; readonly service: string }

/** The map, keyed by the path the kubelet's rewritten probe asks for. */
export const appProbersSchema = z.record(z.string(), appProberSchema).superRefine((probers, ctx) => {
  for (const path of Object.keys(probers)) {
    if (!APP_PROBER_PATH.test(path))
      ctx.addIssue({
        code: 'custom',
        path: [path],
        message: `invalid path '${path}', must be /app-health/<container>/livez|readyz|startupz (or /app-lifecycle/<container>/prestopz|poststartz)`,
      })
  }
})

export type AppProbers = Readonly<Record<string, AppProber>>
