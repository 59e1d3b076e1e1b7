// gRPC over HTTP: how a request is recognised, how its deadline is read, and how a failure is told to a gRPC client.

import type { LocalReplyKind } from './local-reply.ts'
import type { RequestContext } from './request-context.ts'

/** application/grpc, application/grpc+proto, application/grpc-web… (Envoy's Grpc::Common::isGrpcRequestHeaders). */
export function isGrpcRequest(ctx: RequestContext): boolean {
  return ctx.rawHeader('content-type')?.startsWith('application/grpc') === true
}

/** gRPC status codes the proxy itself answers with. */
export const GrpcStatus = {
  unknown: 2,
  deadlineExceeded: 4,
  permissionDenied: 7,
  unimplemented: 12,
  internal: 13,
  unavailable: 14,
  unauthenticated: 16,
} as const

/** Envoy's Grpc::Utility::httpToGrpcStatus (the gRPC project's HTTP-to-gRPC mapping). */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.internal
    case 401:
      return GrpcStatus.unauthenticated
    case 403:
      return GrpcStatus.permissionDenied
    case 404:
      return GrpcStatus.unimplemented
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.unavailable
    default:
      return GrpcStatus.unknown
  }
}

/**
 * The status for a local reply: a timeout is DEADLINE_EXCEEDED, the rest follow the HTTP status. The
 * connection manager's stream duration passes DEADLINE_EXCEEDED explicitly; the router's timeouts do
 * since envoy#44479 (2026, grpc_timeout_returns_deadline_exceeded; before, 504 mapped to UNAVAILABLE).
 */
export function grpcStatusForReply(kind: LocalReplyKind, httpStatus: number): number {
  return kind === 'timeout' ||
    kind === 'streamDurationTimeout' ||
    kind === 'streamDurationTimeoutBeforeRequestEnd'
    ? GrpcStatus.deadlineExceeded
    : grpcStatusForHttp(httpStatus)
}

const timeoutUnitMs: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1_000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
}

/**
 * The `grpc-timeout` header in milliseconds (at least 1 for any positive value), or undefined when
 * absent or malformed: 1 to 8 digits and a unit, as the gRPC over HTTP/2 spec defines it.
 */
export function grpcTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined || value.length < 2 || value.length > 9) return undefined
  const unit = timeoutUnitMs[value[value.length - 1]]
  if (unit === undefined) return undefined
  const digits = value.slice(0, -1)
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return undefined
  }
  const ms = Number(digits) * unit
  return ms > 0 ? Math.max(1, Math.ceil(ms)) : 0
}

/** Envoy's largest grpc-timeout value: 8 digits. */
const maxGrpcTimeoutValue = 99_999_999

/**
 * `ms` as a grpc-timeout value the way Envoy's Grpc::Common::toGrpcTimeout writes it: milliseconds, or a
 * coarser unit when the number would not fit in 8 digits.
 */
export function formatGrpcTimeout(ms: number): string {
  let value = ms
  const units = ['m', 'S', 'M', 'H']
  let i = 0
  while (value > maxGrpcTimeoutValue && i < units.length - 1) {
    value = Math.floor(value / (i === 0 ? 1000 : 60))
    i++
  }
  return `${Math.min(value, maxGrpcTimeoutValue)}${units[i]}`
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and `%` itself. */
export function encodeGrpcMessage(message: string): string {
  let plain = true
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false
      break
    }
  }
  if (plain) return message
  let out = ''
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(byte)
  }
  return out
}
