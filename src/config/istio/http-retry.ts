// HTTPRetry (istio/api virtual_service.proto): how many times, on which failures, and how long each try may take.

import { z } from 'zod'
import { addError } from './add-error.ts'
import { timeoutDurationSchema } from './fields.ts'

/** The retryOn conditions Istio accepts: Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on names. */
export const RETRY_ON_POLICIES = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const

export const httpRetrySchema = z.strictObject({
  attempts: z
    .number()
    .default(0)
    .superRefine((n, ctx) => {
      if (!Number.isInteger(n) || n < 0) addError(ctx, 'attempts cannot be negative')
    }),
  perTryTimeout: timeoutDurationSchema.optional(),
  retryOn: z
    .string()
    .superRefine((text, ctx) => {
      for (const raw of text.split(',')) {
        const policy = raw.trim()
        if (policy === '' || /^\d+$/.test(policy)) continue
        if (!(RETRY_ON_POLICIES as readonly string[]).includes(policy)) {
          addError(ctx, `${policy} is not a valid retryOn policy`)
        }
      }
    })
    .optional(),
  retryRemoteLocalities: z.boolean().optional(),
  retryIgnorePreviousHosts: z.boolean().default(true),
  /** Base interval of the jittered exponential backoff between retries (Envoy's default is 25ms). */
  backoff: timeoutDurationSchema.optional(),
})

export type HttpRetrySpec = z.infer<typeof httpRetrySchema>
