// Istio's default access-log entry for a request or a TCP connection, encoded as its TEXT line or its JSON object.

import type { RequestRecord } from './request-record.ts'
import { formatResponseFlags } from './response-flags.ts'
import type { TcpRecord } from './tcp-record.ts'

/**
 * The fields of Istio's default format (istio/istio pilot/pkg/model/telemetry_logging.go, EnvoyTextLogFormat
 * and EnvoyJSONLogFormatIstio), named by their JSON keys, in the JSON format's order. `null` is a value
 * Envoy has not got: `-` in TEXT, `null` in JSON (Envoy's json_format renders numbers as numbers).
 */
export interface AccessLogEntry {
  start_time: string
  route_name: string | null
  method: string | null
  path: string | null
  protocol: string | null
  response_code: number
  response_flags: string
  response_code_details: string | null
  connection_termination_details: string | null
  upstream_transport_failure_reason: string | null
  bytes_received: number
  bytes_sent: number
  duration: number
  upstream_service_time: string | null
  x_forwarded_for: string | null
  user_agent: string | null
  request_id: string | null
  authority: string | null
  upstream_host: string | null
  upstream_cluster: string | null
  upstream_local_address: string | null
  downstream_local_address: string | null
  downstream_remote_address: string | null
  requested_server_name: string | null
}

/**
 * Envoy's default %START_TIME% (`%Y-%m-%dT%H:%M:%E3SZ`, UTC with milliseconds): the wall time of
 * `startTime`, a performance.now() reading.
 */
export function formatStartTime(startTime: number): string {
  return new Date(performance.timeOrigin + startTime).toISOString()
}

function orNull(value: string | undefined): string | null {
  return value === undefined || value === '' ? null : value
}

/**
 * Details as Envoy prints %RESPONSE_CODE_DETAILS% without ALLOW_WHITESPACES: each space an underscore, so
 * a TEXT line splits on spaces (e.g. a TCP connect failure's reason).
 */
function details(value: string): string | null {
  if (value === '') return null
  return value.includes(' ') ? value.replaceAll(' ', '_') : value
}

/** Envoy's %DURATION%: whole milliseconds (truncated, as std::chrono::duration_cast does). */
function durationMs(start: number, end: number | undefined): number {
  return end === undefined || end < start ? 0 : Math.floor(end - start)
}

/** The entry of a finished HTTP request. */
export function requestEntry(r: RequestRecord): AccessLogEntry {
  return {
    start_time: formatStartTime(r.startTime),
    route_name: orNull(r.routeName),
    method: r.method,
    // %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%: the path before a route's rewrite, as the client sent it.
    path: r.header('x-envoy-original-path') ?? r.url,
    protocol: r.protocol,
    response_code: r.responseStatus,
    response_flags: formatResponseFlags(r.responseFlags),
    response_code_details: details(r.responseCodeDetails),
    connection_termination_details: null,
    upstream_transport_failure_reason: orNull(r.upstreamTransportFailureReason),
    bytes_received: r.requestBodyBytes,
    bytes_sent: r.responseBodyBytes,
    duration: durationMs(r.startTime, r.endTime),
    upstream_service_time: r.upstreamServiceTime < 0 ? null : String(r.upstreamServiceTime),
    x_forwarded_for: orNull(r.header('x-forwarded-for')),
    user_agent: orNull(r.header('user-agent')),
    request_id: orNull(r.requestId || r.header('x-request-id')),
    authority: orNull(r.authority),
    upstream_host: orNull(r.upstreamHostPort),
    upstream_cluster: orNull(r.clusterName),
    upstream_local_address: orNull(r.upstreamLocalAddress),
    downstream_local_address: r.downstreamLocalAddress,
    downstream_remote_address: r.downstreamRemoteAddress,
    requested_server_name: orNull(r.requestedServerName),
  }
}

/** The entry of a finished TCP connection: Istio's same format, with no request (`"- - -" 0`). */
export function tcpEntry(r: TcpRecord): AccessLogEntry {
  return {
    start_time: formatStartTime(r.startTime),
    route_name: null,
    method: null,
    path: null,
    protocol: null,
    response_code: 0,
    response_flags: formatResponseFlags(r.responseFlags),
    response_code_details: null,
    connection_termination_details: details(r.terminationDetails),
    upstream_transport_failure_reason: orNull(r.upstreamTransportFailureReason),
    bytes_received: r.bytesReceived,
    bytes_sent: r.bytesSent,
    duration: durationMs(r.startTime, r.endTime),
    upstream_service_time: null,
    x_forwarded_for: null,
    user_agent: null,
    request_id: null,
    authority: null,
    upstream_host: orNull(r.upstreamHostPort),
    upstream_cluster: orNull(r.clusterName),
    upstream_local_address: orNull(r.upstreamLocalAddress),
    downstream_local_address: r.downstreamLocalAddress,
    downstream_remote_address: r.downstreamRemoteAddress,
    requested_server_name: orNull(r.sni),
  }
}

function text(value: string | null): string {
  return value ?? '-'
}

/**
 * Istio's EnvoyTextLogFormat:
 * `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS%
 * %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" %BYTES_RECEIVED%
 * %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%"
 * "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS%
 * %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n`
 */
export function textLine(e: AccessLogEntry): string {
  return (
    `[${e.start_time}] "${text(e.method)} ${text(e.path)} ${text(e.protocol)}" ${e.response_code} ` +
    `${e.response_flags} ${text(e.response_code_details)} ${text(e.connection_termination_details)} ` +
    `"${text(e.upstream_transport_failure_reason)}" ${e.bytes_received} ${e.bytes_sent} ${e.duration} ` +
    `${text(e.upstream_service_time)} "${text(e.x_forwarded_for)}" "${text(e.user_agent)}" ` +
    `"${text(e.request_id)}" "${text(e.authority)}" "${text(e.upstream_host)}" ${text(e.upstream_cluster)} ` +
    `${text(e.upstream_local_address)} ${text(e.downstream_local_address)} ` +
    `${text(e.downstream_remote_address)} ${text(e.requested_server_name)} ${text(e.route_name)}\n`
  )
}

/** Istio's JSON encoding (EnvoyJSONLogFormatIstio): one object per line. */
export function jsonLine(e: AccessLogEntry): string {
  return `${JSON.stringify(e)}\n`
}
