// The one place that maps a failure to Envoy's status code, body, response flag and response details.

import { ResponseFlag } from '../telemetry/response-flags.ts'

export interface LocalReply {
  readonly status: number
  readonly body: string
  readonly flag: ResponseFlag | undefined
  /** Envoy's %RESPONSE_CODE_DETAILS%. */
  readonly details: string
  /** Extra response headers Envoy adds for this failure. */
  readonly headers?: readonly string[]
}

const resetBody = 'upstream connect error or disconnect/reset before headers. reset reason: '

export const LocalReplies = {
  /**
   * The path cannot be normalized (a NUL, a fragment): Envoy's HCM answers 400 before routing
   * (ConnectionManagerImpl::ActiveStream::decodeHeaders, maybeNormalizePath returning Reject).
   */
  pathNormalizationFailed: { status: 400, body: '', flag: undefined, details: 'path_normalization_failed' },
  /**
   * The overload manager's stop_accepting_requests action: Envoy's connection manager answers a new
   * request right after its headers, before any filter (ActiveStream::decodeHeaders), details `overload`.
   */
  overloaded: {
    status: 503,
    body: 'envoy overloaded',
    flag: ResponseFlag.OverloadManager,
    details: 'overload',
  },
  /** No virtual host or route matched: 404 with an empty body. */
  noRoute: { status: 404, body: '', flag: ResponseFlag.NoRouteFound, details: 'route_not_found' },
  /** The route names a cluster (host or subset) that does not exist. */
  clusterNotFound: { status: 503, body: '', flag: ResponseFlag.NoClusterFound, details: 'cluster_not_found' },
  /** The cluster exists but has no endpoint to send to. */
  noHealthyUpstream: {
    status: 503,
    body: 'no healthy upstream',
    flag: ResponseFlag.NoHealthyUpstream,
    details: 'no_healthy_upstream',
  },
  /** No connection could be made (refused, unreachable, connect timeout, DNS failure). */
  connectFailure: {
    status: 503,
    body: `${resetBody}connection failure`,
    flag: ResponseFlag.UpstreamConnectionFailure,
    details: 'upstream_reset_before_response_started{connection_failure}',
  },
  /** The upstream closed the connection before sending response headers. */
  connectionTermination: {
    status: 503,
    body: `${resetBody}connection termination`,
    flag: ResponseFlag.UpstreamConnectionTermination,
    details: 'upstream_reset_before_response_started{connection_termination}',
  },
  /** The upstream reset the stream (an HTTP/2 RST_STREAM) before sending response headers. */
  remoteReset: {
    status: 503,
    body: `${resetBody}remote reset`,
    flag: ResponseFlag.UpstreamRemoteReset,
    details: 'upstream_reset_before_response_started{remote_reset}',
  },
  /** The upstream refused the HTTP/2 stream (REFUSED_STREAM): it did not process the request. */
  refusedStream: {
    status: 503,
    body: `${resetBody}remote refused stream reset`,
    flag: ResponseFlag.UpstreamRemoteReset,
    details: 'upstream_reset_before_response_started{remote_refused_stream_reset}',
  },
  /** The upstream answered with something that is not valid HTTP. */
  protocolError: {
    status: 502,
    body: `${resetBody}protocol error`,
    flag: ResponseFlag.UpstreamProtocolError,
    details: 'upstream_reset_before_response_started{protocol_error}',
  },
  /** The route timeout fired before the response headers arrived. */
  timeout: {
    status: 504,
    body: 'upstream request timeout',
    flag: ResponseFlag.UpstreamRequestTimeout,
    details: 'upstream_response_timeout',
  },
  /**
   * The route's max_stream_duration (on inbound routes, a call's grpc-timeout) ran out, counted from the
   * request headers: Envoy's ActiveStream::onStreamMaxDurationReached. 504 once the request was read whole,
   * 408 before (Utility::maybeRequestTimeoutCode); gRPC gets DEADLINE_EXCEEDED. Envoy sets no response flag
   * for it (DT is the connection's max duration; envoy#11955 to add one was closed).
   */
  streamDurationTimeout: {
    status: 504,
    body: 'downstream duration timeout',
    flag: undefined,
    details: 'max_duration_timeout',
  },
  streamDurationTimeoutBeforeRequestEnd: {
    status: 408,
    body: 'downstream duration timeout',
    flag: undefined,
    details: 'max_duration_timeout',
  },
  /**
   * More request header fields than `limits.maxRequestHeadersCount`: Envoy's codec answers 431 with the
   * reason phrase as the body and closes the connection (ServerConnectionImpl::sendProtocolError,
   * Http1ResponseCodeDetails TooManyHeaders), flag DPE.
   */
  tooManyRequestHeaders: {
    status: 431,
    body: 'Request Header Fields Too Large',
    flag: ResponseFlag.DownstreamProtocolError,
    details: 'http1.too_many_headers',
    headers: ['connection', 'close'],
  },
  /**
   * An HTTP/1.1 request with more than one Host field: RFC 9112 §3.2 says a server MUST answer 400. Sent as
   * a codec error (reason phrase as the body, `connection: close`, flag DPE, Envoy's generic
   * `http1.codec_error` details): node:http keeps only the first Host, so routing and the app could
   * otherwise disagree about the authority.
   */
  multipleHostFields: {
    status: 400,
    body: 'Bad Request',
    flag: ResponseFlag.DownstreamProtocolError,
    details: 'http1.codec_error',
    headers: ['connection', 'close'],
  },
  /**
   * No activity on the request for `limits.streamIdleTimeout` before its response started: Envoy's
   * ActiveStream::onIdleTimeout (`stream timeout`, flag SI): 504 once the request was read whole, 408
   * before (Utility::maybeRequestTimeoutCode, envoy#20026); after the response started, the stream is reset.
   */
  streamIdleTimeout: {
    status: 504,
    body: 'stream timeout',
    flag: ResponseFlag.StreamIdleTimeout,
    details: 'stream_idle_timeout',
  },
  /** The rest of the request is not waited for: an HTTP/1.1 connection closes (RFC 9110 §15.5.9); h2 resets the stream. */
  streamIdleTimeoutBeforeRequestEnd: {
    status: 408,
    body: 'stream timeout',
    flag: ResponseFlag.StreamIdleTimeout,
    details: 'stream_idle_timeout',
    headers: ['connection', 'close'],
  },
  /** A connection-pool limit was hit (circuit breaking). */
  overflow: {
    status: 503,
    body: `${resetBody}overflow`,
    flag: ResponseFlag.UpstreamOverflow,
    details: 'upstream_reset_before_response_started{overflow}',
    headers: ['x-envoy-overloaded', 'true'],
  },
  /** The request body outgrew the retry buffer while a retry waited out its backoff (Envoy's 507). */
  retryBufferOverflow: {
    status: 507,
    body: 'exceeded request buffer limit while retrying upstream',
    flag: undefined,
    details: 'request_payload_exceeded_retry_buffer_limit',
  },
  /** The fault filter aborted the request; the status is the route's `fault.abort.httpStatus`. */
  faultAbort: {
    status: 503,
    body: 'fault filter abort',
    flag: ResponseFlag.FaultInjected,
    details: 'fault_filter_abort',
  },
  /** A local rate limit's token bucket is empty. */
  rateLimited: {
    status: 429,
    body: 'local_rate_limited',
    flag: ResponseFlag.RateLimited,
    details: 'local_rate_limited',
    headers: ['x-envoy-ratelimited', 'true'],
  },
} as const satisfies Record<string, LocalReply>

export type LocalReplyKind = keyof typeof LocalReplies
