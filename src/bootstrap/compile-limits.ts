// The bootstrap's `limits`, validated, compiled into the Limits the data path reads (no schema needed here).

import { parseDurationMs } from '../config/duration.ts'
import type { Limits } from '../protocol/limits.ts'
import type { LimitsSpec } from './limits.ts'

/** The limits the data path reads: sizes in bytes, durations in ms. */
export function compileLimits(spec: LimitsSpec): Limits {
  return {
    maxRequestHeadersCount: spec.maxRequestHeadersCount,
    maxRequestHeadersBytes: spec.maxRequestHeadersKb * 1024,
    maxResponseHeadersCount: spec.maxResponseHeadersCount,
    maxResponseHeadersBytes: spec.maxResponseHeadersKb * 1024,
    requestHeadersTimeoutMs: Math.round(parseDurationMs(spec.requestHeadersTimeout)),
    streamIdleTimeoutMs: Math.round(parseDurationMs(spec.streamIdleTimeout)),
    idleTimeoutMs: Math.round(parseDurationMs(spec.idleTimeout)),
    maxConnectionsPerListener: spec.maxConnectionsPerListener,
    maxConnections: spec.maxConnections,
    http2: { ...spec.http2 },
  }
}
