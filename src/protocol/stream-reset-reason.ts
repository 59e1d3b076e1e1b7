// Why an upstream exchange ended before a response: the reasons the pools report and the router's retry state reads.

/**
 * As Envoy's Http::StreamResetReason (envoy/http/stream_reset_handler.h): the connection pools and codecs
 * report one, the router decides from it whether to retry and which local reply answers. Each name is
 * also a local reply of src/http/local-reply.ts.
 */
export type StreamResetReason =
  /** No connection could be made (refused, unreachable, connect timeout, DNS failure). */
  | 'connectFailure'
  /** The upstream closed the connection before response headers. */
  | 'connectionTermination'
  /** The upstream reset the stream (an HTTP/2 RST_STREAM). */
  | 'remoteReset'
  /** The upstream refused the HTTP/2 stream (REFUSED_STREAM): it did not process the request. */
  | 'refusedStream'
  /** The upstream answered with something that is not valid HTTP. */
  | 'protocolError'
  /** The route (or per-try) timeout fired. */
  | 'timeout'
