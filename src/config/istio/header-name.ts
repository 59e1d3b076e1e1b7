// Istio's rules for header names in matches and header operations.

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
