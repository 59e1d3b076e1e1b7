// Classifies an error from the upstream connection into the local reply Envoy would give for it.

import { errors } from 'undici'
import type { LocalReplyKind } from '../http/local-reply.ts'

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
export function classifyUpstreamError(err: Error, sentToUpstream: boolean): LocalReplyKind {
  if (err instanceof UpstreamTimeoutError) return 'timeout'
  if (!sentToUpstream) return 'connectFailure'
  // undici's HTTPParserError has no code: it looks the llhttp error up by number in a name-to-number map.
  if (err instanceof errors.HTTPParserError) return 'protocolError'
  const code = codeOf(err)
  if (code?.startsWith('HPE_')) return 'protocolError'
  if (code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') return 'protocolError'
  return 'connectionTermination'
}
