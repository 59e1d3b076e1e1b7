// Forwards an upstream's interim (1xx) response to the client, as Envoy does with Istio's proxy_100_continue.

import { isHopByHop } from '../protocol/hop-by-hop.ts'
import type { DownstreamResponse } from './downstream.ts'
import type { ResponseFields } from './downstream-headers.ts'

/**
 * Envoy forwards the 1xx its codecs decode as informational (HeaderUtility::isSpecial1xx: 100, 102, 103)
 * when the connection manager has proxy_100_continue, which Istio sets on every HTTP listener
 * (ENABLE_100_CONTINUE_HEADERS, default true); any other 1xx is dropped (RFC 9110 §15.2 lets a client
 * ignore an unexpected one). Nothing is sent once the final response has started, and node:http sends
 * none to an HTTP/1.0 client.
 */
export function forwardInterimResponse(
  res: DownstreamResponse,
  status: number,
  fields: ResponseFields,
): void {
  if (res.headersSent || res.destroyed) return
  switch (status) {
    case 100:
      res.writeContinue()
      return
    case 102:
      res.writeProcessing()
      return
    case 103:
      res.writeEarlyHints(earlyHints(fields))
      return
    default:
  }
}

/** The 103's fields without pseudo-headers and hop-by-hop ones (node:http sends it only with a `link`). */
function earlyHints(fields: ResponseFields): Record<string, string | string[]> {
  const hints: Record<string, string | string[]> = {}
  for (const name in fields) {
    const value = fields[name]
    if (value === undefined || name.charCodeAt(0) === 0x3a || isHopByHop(name)) continue
    hints[name] = typeof value === 'string' ? value : [...value]
  }
  return hints
}
