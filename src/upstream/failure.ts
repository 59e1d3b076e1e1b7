// Classifies an error from the upstream connection into a stream reset reason; the router answers it with Envoy's local reply.

import type { StreamResetReason } from '../protocol/stream-reset-reason.ts'
import { errors } from './undici-parts.ts'

/** The reason passed to undici's abort when the route timeout fires. */
export class UpstreamTimeoutError extends Error {
  readonly code = 'OUTRIGGER_UPSTREAM_TIMEOUT'
  constructor() {
    super('upstream request timeout')
    this.name = 'UpstreamTimeoutError'
  }
}

/** The reason passed to undici's abort when the downstream client went away. */
export class DownstreamClosedError extends Error {
  readonly code = 'OUTRIGGER_DOWNSTREAM_CLOSED'
  constructor() {
    super('downstream connection closed')
    this.name = 'DownstreamClosedError'
  }
}

/** The upstream HTTP/2 stream closed before its response ended: RST_STREAM with `rstCode`, or NO_ERROR without a response. */
export class Http2StreamResetError extends Error {
  readonly code = 'OUTRIGGER_H2_STREAM_RESET'
  readonly rstCode: number
  constructor(rstCode: number) {
    super(`upstream stream reset with HTTP/2 error code ${rstCode}`)
    this.name = 'Http2StreamResetError'
    this.rstCode = rstCode
  }
}

/** The upstream HTTP/2 session went away (its connection closed) while the stream was open: connection termination (UC). */
export class Http2SessionClosedError extends Error {
  readonly code = 'ERR_HTTP2_SESSION_ERROR'
  constructor() {
    super('upstream HTTP/2 connection closed while the stream was open')
    this.name = 'Http2SessionClosedError'
  }
}

/** A response with more header fields than `limits.maxResponseHeadersCount`: a protocol error (502 UPE). */
export class ResponseHeadersOverflowError extends Error {
  readonly code = 'UND_ERR_HEADERS_OVERFLOW'
  constructor(count: number, limit: number) {
    super(`upstream response has ${count} header fields, over the limit of ${limit}`)
    this.name = 'ResponseHeadersOverflowError'
  }
}

/** A response head larger than `limits.maxResponseHeadersKb`: a protocol error (502 UPE). */
export class ResponseHeadTooLargeError extends Error {
  readonly code = 'UND_ERR_HEADERS_OVERFLOW'
  constructor(bytes: number, limit: number) {
    super(`upstream response head of ${bytes} bytes, over the limit of ${limit}`)
    this.name = 'ResponseHeadTooLargeError'
  }
}

/** An HTTP/2 session did not connect within the cluster's connectTimeout. */
export class UpstreamConnectTimeoutError extends Error {
  readonly code = 'UND_ERR_CONNECT_TIMEOUT'
  constructor() {
    super('upstream connect timeout')
    this.name = 'UpstreamConnectTimeoutError'
  }
}

/**
 * Envoy's transport failure reason for a connection that failed in its TLS handshake
 * (`TLS_error:|…:TLS_error_end`), or undefined for any other failure.
 */
export function transportFailureReason(err: Error): string | undefined {
  const reason = (err as { transportFailureReason?: unknown }).transportFailureReason
  return typeof reason === 'string' ? reason : undefined
}

/**
 * Whether an HTTP/1.1 exchange failed because its connection closed after that connection had already
 * carried a response: undici's SocketError tells the bytes the socket read, and a connection that read
 * none was new. This is the keep-alive race, when the upstream closes an idle connection just as a
 * request is written to it (undici checks an idle connection before reusing it, so only a close that
 * crosses the request on the wire gets here).
 */
export function closedAfterReuse(err: Error): boolean {
  // Only the end of the stream (client-h1.js onHttpSocketEnd), not a response undici rejected ('bad response').
  if (!(err instanceof errors.SocketError) || err.message !== 'other side closed') return false
  return (err.socket?.bytesRead ?? 0) > 0
}

/** HTTP/2 REFUSED_STREAM: the upstream did not process the request (always safe to retry). */
const REFUSED_STREAM = 0x7
/**
 * HTTP/2 ENHANCE_YOUR_CALM: the code node:http2 resets a stream with when the response head passes the
 * pool's SETTINGS_MAX_HEADER_LIST_SIZE (its header-pair cap too); node reports that reset as it reports
 * one from the peer, so both count as the protocol error that the first is (502 UPE, as Envoy's codec
 * answers a head above max_response_headers_kb).
 */
const ENHANCE_YOUR_CALM = 0xb

function codeOf(err: Error): string | undefined {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : undefined
}

/**
 * `sentToUpstream` is false when undici never got a connection to write the request on:
 * that is a connect failure (refused, unreachable, DNS, connect timeout), safe to retry.
 * Once connected, Envoy's HTTP/1 codec client reports any close of the upstream connection, FIN or
 * RST alike (ECONNRESET, EPIPE), as connection termination (UC); "remote reset" (UR) is a stream
 * reset, which only HTTP/2 has. A response that is not valid HTTP/1.1 is a protocol error (502 UPE).
 */
export function classifyUpstreamError(err: Error, sentToUpstream: boolean): StreamResetReason {
  if (err instanceof UpstreamTimeoutError) return 'timeout'
  if (!sentToUpstream) return 'connectFailure'
  if (err instanceof Http2StreamResetError) {
    if (err.rstCode === REFUSED_STREAM) return 'refusedStream'
    if (err.rstCode === ENHANCE_YOUR_CALM) return 'protocolError'
    return err.rstCode === 0 ? 'connectionTermination' : 'remoteReset'
  }
  const code = codeOf(err)
  if (code === 'ERR_HTTP2_SESSION_ERROR' || code === 'ERR_HTTP2_GOAWAY_SESSION')
    return 'connectionTermination'
  if (code === 'ERR_HTTP2_INVALID_HEADER_VALUE' || code === 'ERR_HTTP2_ERROR') return 'protocolError'
  // undici's HTTPParserError has no code: it looks the llhttp error up by number in a name-to-number map.
  if (err instanceof errors.HTTPParserError) return 'protocolError'
  if (code?.startsWith('HPE_')) return 'protocolError'
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return 'protocolError'
  // A response head above the size or count limit (Envoy's max_response_headers_kb / max_headers_count).
  if (code === 'UND_ERR_HEADERS_OVERFLOW') return 'protocolError'
  return 'connectionTermination'
}
