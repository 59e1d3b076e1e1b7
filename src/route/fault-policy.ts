// A route's compiled fault injection: how long to delay and what to abort with, each with its odds.

export interface FaultAbort {
  /** HTTP status to answer with; undefined when only a gRPC status is configured (Envoy then uses 200). */
  readonly httpStatus: number | undefined
  /** gRPC status code for gRPC requests; undefined maps the HTTP status as Envoy does. */
  readonly grpcStatus: number | undefined
  /** Percent of requests aborted, 0..100. */
  readonly percent: number
}

export interface FaultPolicy {
  /** Injected delay in ms; 0 when the route has no delay. */
  readonly delayMs: number
  /** Percent of requests delayed, 0..100. */
  readonly delayPercent: number
  readonly abort: FaultAbort | undefined
}

/** True with probability `percent` / 100 (Envoy draws per request, in millionths). */
export function rollPercent(percent: number): boolean {
  return percent >= 100 || (percent > 0 && Math.random() * 100 < percent)
}
