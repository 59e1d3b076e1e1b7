// HTTPRetry (istio/api virtual_service.proto): how many times, on which failures, and how long each try may take.

import { z } from 'zod'
import { addError } from './add-error.ts'
import { timeoutDurationSchema } from './fields.ts'
import { warnIgnoredPart } from './unsupported.ts'

/** The retryOn conditions Istio accepts: Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on names. */
export const RETRY_ON_POLICIES = [
  '5xx',
  'gateway-error',
  'reset',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'reset-before-request',
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const

/**
 * Conditions Istio passes to Envoy (pkg/config/validation supportedRetryOnPolicies) that Outrigger accepts
 * but cannot act on yet: retriable-headers reads header matchers (Envoy's retriable_headers, which Istio
 * never sets, or a client's x-envoy-retriable-header-names), envoy-ratelimited a global rate limit
 * service's answer, http3-post-connect-failure an HTTP/3 upstream. They are warned about and ignored.
 */
const IGNORED_RETRY_ON: readonly string[] = [
  'retriable-headers',
  'envoy-ratelimited',
  'http3-post-connect-failure',
]

/**
 * What a retryOn keeps once its ignored conditions are dropped. With none left, `retriable-status-codes`
 * (without codes it matches nothing) keeps the policy retrying on nothing, as Envoy would for those
 * conditions here, instead of falling back to Istio's default conditions as an empty retryOn does.
 */
function withoutIgnored(names: readonly string[]): string {
  const kept = names.filter((name) => !IGNORED_RETRY_ON.includes(name))
  return kept.length > 0 ? kept.join(',') : 'retriable-status-codes'
}

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
      const names: string[] = []
      let invalid = false
      for (const raw of text.split(',')) {
        const policy = raw.trim()
        if (policy === '') continue
        names.push(policy)
        if (/^\d+$/.test(policy)) continue
        if (!(RETRY_ON_POLICIES as readonly string[]).includes(policy)) {
          addError(ctx, `${policy} is not a valid retryOn policy`)
          invalid = true
        }
      }
      const ignored = names.filter((name) => IGNORED_RETRY_ON.includes(name))
      if (invalid || ignored.length === 0) return
      const list = ignored.map((name) => `'${name}'`).join(', ')
      const what = ignored.length === 1 ? `condition ${list} is` : `conditions ${list} are`
      warnIgnoredPart(ctx, `${what} not supported yet and ignored`, withoutIgnored(names))
    })
    .optional(),
  retryRemoteLocalities: z.boolean().optional(),
  retryIgnorePreviousHosts: z.boolean().default(true),
  /** Base interval of the jittered exponential backoff between retries (Envoy's default is 25ms). */
  backoff: timeoutDurationSchema.optional(),
})

export type HttpRetrySpec = z.infer<typeof httpRetrySchema>
