// HTTPFaultInjection (istio/api virtual_service.proto): delays and aborts injected by the proxy.

import { z } from 'zod'
import { addError } from './add-error.ts'
import { timeoutDurationSchema } from './fields.ts'
import { GRPC_STATUS_NAMES } from './grpc-status.ts'
import { unsupported } from './unsupported.ts'

/** istio/api Percent: a double in [0, 100]. */
export const percentSchema = z.strictObject({
  value: z
    .number()
    .default(0)
    .superRefine((value, ctx) => {
      if (value < 0 || value > 100) addError(ctx, 'percentage out of range: must be between 0.0 and 100.0')
    }),
})

const delaySchema = z
  .strictObject({
    fixedDelay: timeoutDurationSchema.optional(),
    exponentialDelay: unsupported(),
    percentage: percentSchema.optional(),
    /** Deprecated integer percent, used when `percentage` is absent. */
    percent: z.number().int().min(0).max(100).optional(),
  })
  .superRefine((delay, ctx) => {
    if (delay.fixedDelay === undefined) addError(ctx, 'delay must specify fixedDelay', ['fixedDelay'])
  })

const abortSchema = z
  .strictObject({
    httpStatus: z.number().optional(),
    grpcStatus: z.string().optional(),
    http2Error: unsupported(),
    percentage: percentSchema.optional(),
  })
  .superRefine((abort, ctx) => {
    const status = abort.httpStatus
    if (status !== undefined && (!Number.isInteger(status) || status < 200 || status > 599)) {
      addError(ctx, `invalid abort http status ${status}`, ['httpStatus'])
    }
    const grpc = abort.grpcStatus
    if (grpc !== undefined && !(GRPC_STATUS_NAMES as readonly string[]).includes(grpc)) {
      addError(ctx, `invalid abort grpc status '${grpc}'`, ['grpcStatus'])
    }
    if (status !== undefined && grpc !== undefined) {
      addError(ctx, 'abort may only specify one of httpStatus or grpcStatus', ['grpcStatus'])
    }
  })

export const httpFaultSchema = z
  .strictObject({ delay: delaySchema.optional(), abort: abortSchema.optional() })
  .superRefine((fault, ctx) => {
    if (fault.delay === undefined && fault.abort === undefined) {
      addError(ctx, 'HTTP fault injection must have an abort and/or a delay')
    }
  })

export type HttpFaultSpec = z.infer<typeof httpFaultSchema>
