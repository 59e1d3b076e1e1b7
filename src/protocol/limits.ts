// The proxy's protective limits (bootstrap `limits`, docs/limits.md), compiled once: what the codecs, listeners and router enforce.

/** HTTP/2 limits of a downstream session (node:http2 settings and session options). */
export interface Http2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS the proxy advertises. */
  readonly maxConcurrentStreams: number
  /** node:http2's maxSessionMemory (MB): new streams are refused once a session buffers more. */
  readonly maxSessionMemoryMb: number
  /**
   * Envoy's overload.premature_reset_total_stream_count: once this many streams closed on a connection,
   * it is closed when at least half were reset by the client before their response (CVE-2023-44487).
   */
  readonly prematureResetStreams: number
  /** node:http2's maxSessionInvalidFrames: a session sending more invalid frames is closed. */
  readonly maxInvalidFrames: number
  /** node:http2's maxSessionRejectedStreams: a session opening more streams that were refused is closed. */
  readonly maxRejectedStreams: number
}

export interface Limits {
  /** Request header fields (Envoy's max_headers_count, default 100): more is 431. */
  readonly maxRequestHeadersCount: number
  /** Request line and headers, in bytes (Envoy's max_request_headers_kb, 60 KiB): more is 431. */
  readonly maxRequestHeadersBytes: number
  /** Response header fields from an upstream: more is 502 UPE. */
  readonly maxResponseHeadersCount: number
  /** An upstream's response head, in bytes (Envoy's max_response_headers_kb, 60 KiB): more is 502 UPE. */
  readonly maxResponseHeadersBytes: number
  /** A connection whose first request's headers are not complete this long after accept is closed; 0: none. */
  readonly requestHeadersTimeoutMs: number
  /** Envoy's stream_idle_timeout: a request with no activity this long gets 504, or 408 while its request is still arriving (reset once its response started); 0: none. */
  readonly streamIdleTimeoutMs: number
  /** Envoy's connection manager idle_timeout: a connection without requests this long is closed; 0: none. */
  readonly idleTimeoutMs: number
  /** Open connections per listener (Envoy's listener connection limit); 0: unlimited. */
  readonly maxConnectionsPerListener: number
  /** Open connections over every listener (Envoy's global_downstream_max_connections); 0: unlimited. */
  readonly maxConnections: number
  readonly http2: Http2Limits
}

/** The defaults: Envoy's where a sidecar has them, nginx's 60 s for the request headers. */
export const defaultLimits: Limits = {
  maxRequestHeadersCount: 100,
  maxRequestHeadersBytes: 60 * 1024,
  maxResponseHeadersCount: 100,
  maxResponseHeadersBytes: 60 * 1024,
  requestHeadersTimeoutMs: 60_000,
  streamIdleTimeoutMs: 300_000,
  idleTimeoutMs: 3_600_000,
  maxConnectionsPerListener: 0,
  maxConnections: 0,
  http2: {
    maxConcurrentStreams: 1000,
    maxSessionMemoryMb: 64,
    prematureResetStreams: 500,
    maxInvalidFrames: 1000,
    maxRejectedStreams: 100,
  },
}
