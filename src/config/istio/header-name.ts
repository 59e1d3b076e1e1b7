// Istio's rules for header names in matches and header operations, and Envoy's for the values it sends.

import { isHopByHop } from '../../protocol/hop-by-hop.ts'

/** RFC 7230 token characters: what a header name may contain. */
const HEADER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status'])
const JWT_CLAIM_PREFIX = '@request.auth.claims.'

/** Istio's routing on JWT claims (`@request.auth.claims.group`) written as a header match name. */
export function isJwtClaimMatch(name: string): boolean {
  return name.startsWith(JWT_CLAIM_PREFIX) && name.length > JWT_CLAIM_PREFIX.length
}

/** Why `name` cannot be matched as a header, or undefined when it can. */
export function headerMatchNameProblem(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty'
  if (PSEUDO_HEADERS.has(name) || HEADER_TOKEN.test(name)) return undefined
  return `header name '${name}' is not a valid header name`
}

/** Why a request header cannot be set or added under `name` (`:authority` and `host` rewrite the authority). */
export function requestHeaderSetProblem(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty'
  const lower = name.toLowerCase()
  if (lower === ':authority' || lower === 'host') return undefined
  if (name.startsWith(':')) return `invalid header '${name}': header cannot have ':' prefix`
  if (!HEADER_TOKEN.test(name)) return `header name '${name}' is not a valid header name`
  // The upstream client (undici) refuses these: every request on the route would fail with 503.
  if (isHopByHop(lower))
    return `header '${name}' is hop-by-hop: the proxy sets it for each upstream connection and cannot send a configured one`
  return undefined
}

/** Why a response header, or a removed request header, cannot be operated on under `name`. */
export function headerOperationProblem(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty'
  if (name.toLowerCase() === 'host') return `invalid header '${name}': cannot set Host header`
  if (name.startsWith(':')) return `invalid header '${name}': header cannot have ':' prefix`
  if (!HEADER_TOKEN.test(name)) return `header name '${name}' is not a valid header name`
  return undefined
}

/** Envoy's HeaderValue `max_bytes` (config/core/v3/base.proto). */
const MAX_HEADER_VALUE_BYTES = 16384

/**
 * Why a header operation's value cannot be sent, or undefined when it can. Envoy refuses NUL, CR and LF
 * (HeaderValue.value is `well_known_regex: HTTP_HEADER_VALUE, strict: false`): a value with a line break
 * would end the header line. Node refuses the other control characters but HTAB when it writes a head
 * (it throws, which would fail every matching request), so they are refused here too.
 */
export function headerValueProblem(value: string): string | undefined {
  if (/[\0\r\n]/.test(value)) return 'header value must not contain NUL, CR or LF'
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this finds
  if (/[\x01-\x08\x0b-\x1f\x7f]/.test(value))
    return 'header value must not contain control characters other than HTAB'
  if (Buffer.byteLength(value, 'utf8') > MAX_HEADER_VALUE_BYTES)
    return `header value must be at most ${MAX_HEADER_VALUE_BYTES} bytes`
  return undefined
}
