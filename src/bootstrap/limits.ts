// The bootstrap's `limits` block (docs/limits.md): header sizes and counts, timeouts, connection caps and HTTP/2 session bounds (compile-limits.ts compiles it to Limits).

import { z } from 'zod'
import { durationSchema } from '../config/istio/fields.ts'
import { defaultLimits } from '../protocol/limits.ts'

function integerAtLeast(min: number) {
  return z.number().superRefine((n, ctx) => {
    if (!Number.isInteger(n) || n < min)
      ctx.addIssue({ code: 'custom', message: `must be an integer ≥ ${min}` })
  })
}

/** Envoy caps max_request_headers_kb (and max_response_headers_kb) at 8192 (96 KiB was its old ceiling; 8 MiB since 1.29). */
const kilobytes = integerAtLeast(1).superRefine((kb, ctx) => {
  if (kb > 8192) ctx.addIssue({ code: 'custom', message: 'must be at most 8192 (8 MiB)' })
})

const d = defaultLimits
const msToDuration = (ms: number): string => `${ms}ms`

const http2LimitsSchema = z
  .strictObject({
    maxConcurrentStreams: integerAtLeast(1).default(d.http2.maxConcurrentStreams),
    maxSessionMemoryMb: integerAtLeast(1).default(d.http2.maxSessionMemoryMb),
    prematureResetStreams: integerAtLeast(2).default(d.http2.prematureResetStreams),
    maxInvalidFrames: integerAtLeast(0).default(d.http2.maxInvalidFrames),
    maxRejectedStreams: integerAtLeast(0).default(d.http2.maxRejectedStreams),
  })
  .prefault({})

/** Every key is optional; a duration of `0s` turns that timeout off, a connection cap of 0 means unlimited. */
export const limitsSchema = z
  .strictObject({
    maxRequestHeadersKb: kilobytes.default(d.maxRequestHeadersBytes / 1024),
    maxRequestHeadersCount: integerAtLeast(1).default(d.maxRequestHeadersCount),
    maxResponseHeadersCount: integerAtLeast(1).default(d.maxResponseHeadersCount),
    maxResponseHeadersKb: kilobytes.default(d.maxResponseHeadersBytes / 1024),
    requestHeadersTimeout: durationSchema.default(msToDuration(d.requestHeadersTimeoutMs)),
    streamIdleTimeout: durationSchema.default(msToDuration(d.streamIdleTimeoutMs)),
    idleTimeout: durationSchema.default(msToDuration(d.idleTimeoutMs)),
    maxConnectionsPerListener: integerAtLeast(0).default(0),
    maxConnections: integerAtLeast(0).default(0),
    http2: http2LimitsSchema,
  })
  .prefault({})

export type LimitsSpec = z.infer<typeof limitsSchema>
