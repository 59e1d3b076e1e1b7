// Hop-by-hop headers (RFC 9110 §7.6.1) that a proxy never forwards, plus those undici refuses
// (connection, keep-alive, proxy-connection, proxy-authenticate, proxy-authorization, transfer-encoding,
// upgrade, te, trailer, expect, http2-settings).

/** Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2); node:http2 throws on them. */
const http2Forbidden = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
])

export function isHttp2Forbidden(lowerName: string): boolean {
  return http2Forbidden.has(lowerName)
}

/**
 * Whether a lowercase field name is one a proxy never forwards. Asked for every header both ways, so it
 * compares by length first instead of hashing each freshly decoded name for a Set lookup.
 */
export function isHopByHop(lowerName: string): boolean {
  switch (lowerName.length) {
    case 2:
      return lowerName === 'te'
    case 6:
      return lowerName === 'expect'
    case 7:
      return lowerName === 'upgrade' || lowerName === 'trailer'
    case 10:
      return lowerName === 'connection' || lowerName === 'keep-alive'
    case 14:
      return lowerName === 'http2-settings'
    case 16:
      return lowerName === 'proxy-connection'
    case 17:
      return lowerName === 'transfer-encoding'
    case 18:
      return lowerName === 'proxy-authenticate'
    case 19:
      return lowerName === 'proxy-authorization'
    default:
      return false
  }
}

/** Extra names listed in a Connection header value (e.g. `close, x-foo`), lowercased. */
export function connectionTokens(value: string | undefined): Set<string> | undefined {
  // The usual values name no extra header: answered without splitting (every nginx response has one).
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined
  let tokens: Set<string> | undefined
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase()
    if (token === '' || token === 'close' || token === 'keep-alive') continue
    tokens ??= new Set()
    tokens.add(token)
  }
  return tokens
}
