// Finds a request's JWTs where RequestAuthentication rules look for them, and reads one without verifying it (Envoy's jwt_verify_lib checks).

import { type JwtLocation, type JwtRuleModel, sanitizeAudience } from '../../config/jwt-policy.ts'
import type { RequestContext } from '../request-context.ts'

/** jwt_verify_lib's status strings (Envoy source/common/jwt/status.cc): the 401/403 body Envoy sends. */
export const JwtStatus = {
  missing: 'Jwt is missing',
  notYetValid: 'Jwt not yet valid',
  expired: 'Jwt is expired',
  badFormat: 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections',
  headerBadBase64: 'Jwt header is an invalid Base64url encoded',
  headerBadJson: 'Jwt header is an invalid JSON',
  headerBadAlg: 'Jwt header [alg] field is required and must be a string',
  headerNotImplementedAlg: 'Jwt header [alg] is not supported',
  headerBadKid: 'Jwt header [kid] field is not a string',
  payloadBadBase64: 'Jwt payload is an invalid Base64url encoded',
  payloadBadJson: 'Jwt payload is an invalid JSON',
  issNotString: 'Jwt payload [iss] field is not a string',
  subNotString: 'Jwt payload [sub] field is not a string',
  nbfNotInteger: 'Jwt payload [nbf] field is not an integer',
  expNotInteger: 'Jwt payload [exp] field is not an integer',
  audNotString: 'Jwt payload [aud] field is not a string or string list',
  signatureBadBase64: 'Jwt signature is an invalid Base64url encoded',
  unknownIssuer: 'Jwt issuer is not configured',
  audienceNotAllowed: 'Audiences in Jwt are not allowed',
  verificationFail: 'Jwt verification fails',
  jwksKidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  jwksFetchFail: 'Jwks remote fetch is failed',
} as const

export type JwtStatusText = (typeof JwtStatus)[keyof typeof JwtStatus]

/** A token found in the request, and the rules that read the place it was found. */
export interface FoundToken {
  readonly token: string
  readonly location: JwtLocation
  readonly rules: JwtRuleModel[]
}

/** A token's decoded parts; nothing here is trusted until the signature is verified. */
export interface ParsedJwt {
  readonly token: string
  readonly alg: string
  readonly payload: Readonly<Record<string, unknown>>
  /** The payload segment as sent (base64url), for `outputPayloadToHeader`. */
  readonly payloadSegment: string
  readonly iss: string
  readonly sub: string
  readonly audiences: readonly string[]
}

const BASE64URL = /^[A-Za-z0-9_-]*$/
/** Envoy's extractor takes the run of JWT characters after a header's prefix. */
const JWT_RUN = /^[A-Za-z0-9_.-]*/

/** Every token the rules' locations hold, one per distinct location; undefined when there is none. */
export function findTokens(ctx: RequestContext, rules: readonly JwtRuleModel[]): FoundToken[] | undefined {
  let found: FoundToken[] | undefined
  for (const rule of rules) {
    for (const location of rule.locations) {
      const same = found?.find((f) => sameLocation(f.location, location))
      if (same !== undefined) {
        if (!same.rules.includes(rule)) same.rules.push(rule)
        continue
      }
      const token = tokenAt(ctx, location)
      if (token === undefined) continue
      found ??= []
      found.push({ token, location, rules: [rule] })
    }
  }
  return found
}

function sameLocation(a: JwtLocation, b: JwtLocation): boolean {
  if (a.kind !== b.kind || a.name !== b.name) return false
  return a.kind !== 'header' || b.kind !== 'header' || a.prefix === b.prefix
}

function tokenAt(ctx: RequestContext, location: JwtLocation): string | undefined {
  switch (location.kind) {
    case 'header': {
      const value = ctx.rawHeader(location.name)
      if (value === undefined) return undefined
      if (location.prefix === '') return value.trim()
      const at = value.indexOf(location.prefix)
      if (at === -1) return undefined
      return (JWT_RUN.exec(value.slice(at + location.prefix.length)) as RegExpExecArray)[0]
    }
    case 'param':
      return ctx.queryParam(location.name)
    case 'cookie':
      return cookieValue(ctx.rawHeader('cookie'), location.name)
  }
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim()
  }
  return undefined
}

/** Reads a token's header and payload as jwt_verify_lib's Jwt::parseFromString does, or says why it cannot. */
export function parseJwt(token: string): ParsedJwt | JwtStatusText {
  const parts = token.split('.')
  if (parts.length !== 3) return JwtStatus.badFormat
  const [headerPart, payloadPart, signaturePart] = parts
  const header = decodeJson(headerPart)
  if (header === 'base64') return JwtStatus.headerBadBase64
  if (header === 'json') return JwtStatus.headerBadJson
  if (typeof header.alg !== 'string') return JwtStatus.headerBadAlg
  if (header.kid !== undefined && typeof header.kid !== 'string') return JwtStatus.headerBadKid
  const payload = decodeJson(payloadPart)
  if (payload === 'base64') return JwtStatus.payloadBadBase64
  if (payload === 'json') return JwtStatus.payloadBadJson
  const { iss, sub, aud, exp, nbf } = payload
  if (iss !== undefined && typeof iss !== 'string') return JwtStatus.issNotString
  if (sub !== undefined && typeof sub !== 'string') return JwtStatus.subNotString
  if (nbf !== undefined && !Number.isInteger(nbf)) return JwtStatus.nbfNotInteger
  if (exp !== undefined && !Number.isInteger(exp)) return JwtStatus.expNotInteger
  let audiences: string[]
  if (aud === undefined) audiences = []
  else if (typeof aud === 'string') audiences = [aud]
  else if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) audiences = aud
  else return JwtStatus.audNotString
  if (signaturePart === '' || !BASE64URL.test(signaturePart)) return JwtStatus.signatureBadBase64
  return {
    token,
    alg: header.alg,
    payload,
    payloadSegment: payloadPart,
    iss: iss ?? '',
    sub: sub ?? '',
    audiences,
  }
}

function decodeJson(segment: string): Record<string, unknown> | 'base64' | 'json' {
  if (segment === '' || !BASE64URL.test(segment)) return 'base64'
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
  } catch {
    return 'json'
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : 'json'
}

/** Envoy's clock skew allowance when a provider sets none (JwtProvider.clock_skew_seconds). */
const CLOCK_SKEW_SECONDS = 60

/**
 * The claim checks Envoy's authenticator makes before it looks at keys, in its order: issuer, time,
 * audience (source/extensions/filters/http/jwt_authn/authenticator.cc startVerify); undefined: they pass.
 */
export function checkClaims(
  jwt: ParsedJwt,
  rule: JwtRuleModel,
  nowSeconds: number,
): JwtStatusText | undefined {
  if (jwt.iss !== rule.issuer) return JwtStatus.unknownIssuer
  const { nbf, exp } = jwt.payload as { nbf?: number; exp?: number }
  if (nbf !== undefined && nbf > nowSeconds + CLOCK_SKEW_SECONDS) return JwtStatus.notYetValid
  if (exp !== undefined && exp < nowSeconds - CLOCK_SKEW_SECONDS) return JwtStatus.expired
  if (rule.audiences.length > 0 && !jwt.audiences.some((a) => rule.audiences.includes(sanitizeAudience(a))))
    return JwtStatus.audienceNotAllowed
  return undefined
}
