// Hop-by-hop headers (RFC 9110 §7.6.1) that a proxy never forwards, plus those undici refuses.

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'http2-settings',
])

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

export function isHopByHop(lowerName: string): boolean {
  return hopByHop.has(lowerName)
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
