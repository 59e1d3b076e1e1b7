// The bootstrap's `rateLimits`: local token buckets (Envoy's local_ratelimit) per listener port and/or route name.

import { z } from 'zod'
import { timeoutDurationSchema } from '../config/istio/fields.ts'

const positiveInt = z.number().superRefine((n, ctx) => {
  if (!Number.isInteger(n) || n < 1) ctx.addIssue({ code: 'custom', message: 'must be an integer ≥ 1' })
})

export const rateLimitSchema = z
  .strictObject({
    /** The listener port (a Sidecar ingress/egress port); every HTTP listener when omitted. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Only requests on routes with this `http[].name`; every request on the listener when omitted. */
    route: z.string().optional(),
    tokenBucket: z.strictObject({
      maxTokens: positiveInt,
      /** Tokens added each fillInterval (default 1). */
      tokensPerFill: positiveInt.default(1),
      fillInterval: timeoutDurationSchema,
    }),
  })
  .superRefine((limit, ctx) => {
    if (limit.port === undefined && limit.route === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a rate limit needs a port, a route, or both' })
    }
  })

export type RateLimitSpec = z.infer<typeof rateLimitSchema>
