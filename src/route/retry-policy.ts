// A route's compiled retry policy (Envoy's RetryPolicy as Istio builds it) and the decisions it makes.

import type { StreamResetReason } from '../protocol/stream-reset-reason.ts'

/** retryOn conditions as bits, so a decision is a mask test. */
export const RetryOn = {
  fiveXx: 1,
  gatewayError: 2,
  reset: 4,
  connectFailure: 8,
  retriable4xx: 16,
  refusedStream: 32,
  retriableStatusCodes: 64,
  cancelled: 128,
  deadlineExceeded: 256,
  internal: 512,
  resourceExhausted: 1024,
  unavailable: 2048,
  resetBeforeRequest: 4096,
} as const

const BY_NAME: Readonly<Record<string, number>> = {
  '5xx': RetryOn.fiveXx,
  'gateway-error': RetryOn.gatewayError,
  reset: RetryOn.reset,
  'connect-failure': RetryOn.connectFailure,
  'reset-before-request': RetryOn.resetBeforeRequest,
  'retriable-4xx': RetryOn.retriable4xx,
  'refused-stream': RetryOn.refusedStream,
  'retriable-status-codes': RetryOn.retriableStatusCodes,
  cancelled: RetryOn.cancelled,
  'deadline-exceeded': RetryOn.deadlineExceeded,
  internal: RetryOn.internal,
  'resource-exhausted': RetryOn.resourceExhausted,
  unavailable: RetryOn.unavailable,
}

/** The retryOn names set in `on`, for /config_dump. */
export function retryOnNames(on: number): string[] {
  return Object.keys(BY_NAME).filter((name) => (on & BY_NAME[name]) !== 0)
}

/** gRPC status codes of the gRPC retryOn conditions. */
const GRPC_CODES: readonly (readonly [number, number])[] = [
  [1, RetryOn.cancelled],
  [4, RetryOn.deadlineExceeded],
  [13, RetryOn.internal],
  [8, RetryOn.resourceExhausted],
  [14, RetryOn.unavailable],
]

/** The conditions read from a response's grpc-status header. */
export const GRPC_CONDITIONS =
  RetryOn.cancelled |
  RetryOn.deadlineExceeded |
  RetryOn.internal |
  RetryOn.resourceExhausted |
  RetryOn.unavailable

/** Failures without a response that `5xx`, `gateway-error` and `reset` all retry (no response at all). */
const NO_RESPONSE = RetryOn.fiveXx | RetryOn.gatewayError | RetryOn.reset

export interface RetryPolicy {
  /** Retries after the first try; 0 disables retrying. */
  readonly numRetries: number
  /** Timeout of each try in ms; 0 means only the route timeout applies. */
  readonly perTryTimeoutMs: number
  readonly on: number
  readonly statusCodes: ReadonlySet<number>
  /** Prefer hosts not tried yet (Envoy's previous_hosts predicate). */
  readonly skipPreviousHosts: boolean
  /** Retries move to priority levels not tried yet (retryRemoteLocalities: Envoy's previous_priorities). */
  readonly retryRemoteLocalities: boolean
  /** Backoff base in ms; the cap is ten times it (Envoy: 25ms and 250ms). */
  readonly backoffBaseMs: number
}

/** Envoy's default retry backoff base interval. */
export const DEFAULT_BACKOFF_MS = 25

/** The bound on the request body copy kept for retries and mirrors: past it, a body is no longer retried. */
export const MAX_REPLAY_BODY_BYTES = 64 * 1024

/** Reads Istio's retryOn: policy names, and bare status codes that imply `retriable-status-codes`. */
export function parseRetryOn(text: string): { on: number; statusCodes: Set<number> } {
  let on = 0
  const statusCodes = new Set<number>()
  for (const raw of text.split(',')) {
    const name = raw.trim()
    if (/^\d+$/.test(name)) {
      statusCodes.add(Number(name))
      on |= RetryOn.retriableStatusCodes
    } else {
      on |= BY_NAME[name] ?? 0
    }
  }
  return { on, statusCodes }
}

/**
 * Istio's policy for a route without `retries` (retry.DefaultPolicy in pilot/pkg/networking/core/route/retry):
 * 2 retries on connection failures, refused streams, the gRPC unavailable / cancelled statuses and a 503
 * (its RetriableStatusCodes), on a host not tried yet.
 */
export const defaultRetryPolicy: RetryPolicy = {
  numRetries: 2,
  perTryTimeoutMs: 0,
  ...parseRetryOn('connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,503'),
  skipPreviousHosts: true,
  retryRemoteLocalities: false,
  backoffBaseMs: DEFAULT_BACKOFF_MS,
}

/**
 * Istio's policy for inbound routes (retry.ConvertInboundPolicy with no defaultInboundHttpRetryPolicy in
 * MeshConfig): 2 retries on reset-before-request, no host predicate (an inbound cluster has one
 * endpoint). Only a request that never reached the application is retried, so it is safe for any method.
 */
export const defaultInboundRetryPolicy: RetryPolicy = {
  numRetries: 2,
  perTryTimeoutMs: 0,
  ...parseRetryOn('reset-before-request'),
  skipPreviousHosts: false,
  retryRemoteLocalities: false,
  backoffBaseMs: DEFAULT_BACKOFF_MS,
}

/** Whether a response with this status (and grpc-status header, or -1) asks for another try. */
export function retriableResponse(policy: RetryPolicy, status: number, grpcStatus: number): boolean {
  const on = policy.on
  if (on & RetryOn.fiveXx && status >= 500) return true
  if (on & RetryOn.gatewayError && status >= 502 && status <= 504) return true
  if (on & RetryOn.retriable4xx && status === 409) return true
  if (on & RetryOn.retriableStatusCodes && policy.statusCodes.has(status)) return true
  if (grpcStatus > 0) {
    for (const [code, bit] of GRPC_CODES) if (code === grpcStatus && on & bit) return true
  }
  return false
}

/**
 * Whether a try that failed before any response (connect failure, reset, per-try timeout) is retried.
 * `connectFailure` is the failure of a try whose request never got a connection to be written on: no
 * byte reached the upstream, which is what Envoy's `reset-before-request` asks (RetryStateImpl::
 * wouldRetryFromReset retries while the router's upstream_request_started_ is false).
 */
export function retriableFailure(policy: RetryPolicy, kind: StreamResetReason): boolean {
  const on = policy.on
  switch (kind) {
    case 'connectFailure':
      return (on & (NO_RESPONSE | RetryOn.connectFailure | RetryOn.resetBeforeRequest)) !== 0
    case 'refusedStream':
      return (on & (NO_RESPONSE | RetryOn.refusedStream)) !== 0
    case 'connectionTermination':
    case 'remoteReset':
    case 'timeout':
      return (on & NO_RESPONSE) !== 0
    default:
      return false
  }
}

/** Envoy's jittered exponential backoff: uniform in [0, base·(2^n − 1)), capped at ten times the base. */
export function backoffMs(policy: RetryPolicy, retry: number): number {
  const base = policy.backoffBaseMs
  const ceiling = Math.min(base * (2 ** retry - 1), base * 10)
  return Math.floor(Math.random() * ceiling)
}
