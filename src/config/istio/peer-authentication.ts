// PeerAuthentication spec (istio/api security/v1beta1/peer_authentication.proto): which mutual TLS a workload's inbound ports accept.

import { z } from 'zod'
import { addError } from './add-error.ts'
import { stringMapSchema } from './fields.ts'

/** PeerAuthentication.MutualTLS.Mode; UNSET inherits from the parent scope (port → workload → namespace → mesh). */
export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const

export type PeerAuthenticationMode = (typeof MTLS_MODES)[number]

const mutualTlsSchema = z.strictObject({ mode: z.enum(MTLS_MODES).default('UNSET') })

/** Istio's validation (pkg/config/validation, ValidatePeerAuthentication): ports are 1..65535 and need a selector. */
export const peerAuthenticationSpecSchema = z
  .strictObject({
    selector: z.strictObject({ matchLabels: stringMapSchema.default({}) }).optional(),
    mtls: mutualTlsSchema.optional(),
    portLevelMtls: z.record(z.string(), mutualTlsSchema).optional(),
  })
  .superRefine((spec, ctx) => {
    const ports = Object.keys(spec.portLevelMtls ?? {})
    if (ports.length === 0) return
    const labels = spec.selector?.matchLabels ?? {}
    if (Object.keys(labels).length === 0) {
      addError(ctx, 'mesh/namespace peer authentication cannot have port level mTLS', ['portLevelMtls'])
    }
    for (const port of ports) {
      const n = Number(port)
      if (!/^[0-9]+$/.test(port) || n < 1 || n > 65535)
        addError(ctx, `port must be in range 1..65535 (got '${port}')`, ['portLevelMtls', port])
    }
  })

export type PeerAuthenticationSpec = z.infer<typeof peerAuthenticationSpecSchema>
