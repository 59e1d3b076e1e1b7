// CorsPolicy (istio/api virtual_service.proto): cross-origin access answered by the proxy, per route.

import { z } from 'zod'
import { timeoutDurationSchema } from './fields.ts'
import { stringMatchSchema } from './string-match.ts'

export const corsPolicySchema = z.strictObject({
  allowOrigins: z.array(stringMatchSchema).default([]),
  /** Deprecated exact origins (`*` allows any). */
  allowOrigin: z.array(z.string()).default([]),
  allowMethods: z.array(z.string()).default([]),
  allowHeaders: z.array(z.string()).default([]),
  exposeHeaders: z.array(z.string()).default([]),
  maxAge: timeoutDurationSchema.optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(['UNSPECIFIED', 'FORWARD', 'IGNORE']).default('UNSPECIFIED'),
})

export type CorsPolicySpec = z.infer<typeof corsPolicySchema>
