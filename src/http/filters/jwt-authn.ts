// Istio's RequestAuthentication (Envoy's jwt_authn filter as Istio configures it): a token present must verify, a request without one passes.

import type { JwtRuleModel } from '../../config/jwt-policy.ts'
import type { ListenerModel, Model } from '../../config/model.ts'
import type { RequestPrincipal } from '../../protocol/peer-identity.ts'
import { log } from '../../telemetry/log.ts'
import type { FilterStatus, HttpFilter } from '../filter.ts'
import { resumeFilters } from '../filter-chain.ts'
import { grpcStatusForHttp, isGrpcRequest } from '../grpc.ts'
import type { RequestContext } from '../request-context.ts'
import { sendGrpcReply, sendResponse } from '../respond.ts'
import { jose } from './jose-module.ts'
import type { JwksCache, KeyResolver } from './jwks-cache.ts'
import {
  checkClaims,
  type FoundToken,
  findTokens,
  JwtStatus,
  type JwtStatusText,
  type ParsedJwt,
  parseJwt,
} from './jwt-token.ts'

/** Envoy's MaximumUriLength for the realm in `www-authenticate` (jwt_authn/filter.cc). */
const MAX_REALM_PATH = 256

/** A token that verified, with the rule that verified it. */
interface VerifiedToken {
  readonly jwt: ParsedJwt
  readonly rule: JwtRuleModel
  readonly found: FoundToken
}

/**
 * Registered on inbound listeners; it reads the rules from the request's model, so a reload that adds or
 * removes a RequestAuthentication takes effect without new filters, and costs one field read when none
 * applies. Istio's requirement (policy_applier.go convertToEnvoyJwtConfig): every rule is "provider OR
 * allow_missing", so a request without a token passes unauthenticated (AuthorizationPolicy decides),
 * and a token present must verify against a rule whose issuer it names: else 401, or 403 when only
 * its audience is wrong (Envoy's onComplete).
 */
export class JwtAuthnFilter implements HttpFilter {
  readonly name = 'jwt-authn'
  readonly #jwks: JwksCache

  constructor(jwks: JwksCache) {
    this.#jwks = jwks
  }

  appliesTo(_listener: ListenerModel, model: Model): boolean {
    return model.requestAuthentication !== undefined
  }

  onRequestHeaders(ctx: RequestContext): FilterStatus {
    const policy = ctx.model.requestAuthentication
    if (policy === undefined) return 'continue'
    // Istio sets bypass_cors_preflight: a preflight carries no credentials.
    if (isCorsPreflight(ctx)) return 'continue'
    const tokens = findTokens(ctx, policy.rules)
    if (tokens === undefined) return 'continue'
    void verifyRequest(ctx, tokens, this.#jwks)
    return 'stop'
  }
}

function isCorsPreflight(ctx: RequestContext): boolean {
  return (
    ctx.method === 'OPTIONS' &&
    ctx.rawHeader('origin') !== undefined &&
    ctx.rawHeader('access-control-request-method') !== undefined
  )
}

/** Verifies every token found (a request with a good token and a bad one is refused), then resumes the chain. */
async function verifyRequest(
  ctx: RequestContext,
  tokens: readonly FoundToken[],
  jwks: JwksCache,
): Promise<void> {
  const verified: VerifiedToken[] = []
  for (const found of tokens) {
    let result: VerifiedToken | JwtStatusText
    try {
      result = await verifyToken(found, jwks)
    } catch (err) {
      log.warning(`jwt: verification error: ${(err as Error).message}`)
      result = JwtStatus.verificationFail
    }
    if (typeof result === 'string') {
      log.debug(
        `jwt: ${ctx.method} ${ctx.path} refused: ${result} (${found.rules.map((r) => r.policy).join(', ')})`,
      )
      refuse(ctx, result)
      return
    }
    verified.push(result)
  }
  if (ctx.res.destroyed) return
  for (const token of verified) applyOutputs(ctx, token)
  ctx.requestPrincipal = principalOf(verified[0])
  resumeFilters(ctx)
}

/** The token against each rule that reads its location and names its issuer; the first failure is the answer. */
async function verifyToken(found: FoundToken, jwks: JwksCache): Promise<VerifiedToken | JwtStatusText> {
  const jwt = parseJwt(found.token)
  if (typeof jwt === 'string') return jwt
  let failure: JwtStatusText = JwtStatus.unknownIssuer
  for (const rule of found.rules) {
    if (rule.issuer !== jwt.iss) continue
    const status = await verifyWithRule(jwt, rule, jwks)
    if (status === undefined) return { jwt, rule, found }
    if (failure === JwtStatus.unknownIssuer) failure = status
  }
  return failure
}

/** Envoy's order: the claims, then the key set (fetched if need be), then the signature (jose). */
async function verifyWithRule(
  jwt: ParsedJwt,
  rule: JwtRuleModel,
  jwks: JwksCache,
): Promise<JwtStatusText | undefined> {
  const claims = checkClaims(jwt, rule, Math.floor(Date.now() / 1000))
  if (claims !== undefined) return claims
  const keys = await jwks.keysFor(rule)
  if (keys === undefined) return JwtStatus.jwksFetchFail
  return verifySignature(jwt.token, keys)
}

async function verifySignature(token: string, keys: KeyResolver): Promise<JwtStatusText | undefined> {
  const { compactVerify, errors } = jose()
  try {
    await compactVerify(token, keys)
    return undefined
  } catch (err) {
    if (err instanceof errors.JWKSMultipleMatchingKeys) {
      // A token without `kid` and several keys of its algorithm: any one of them may have signed it.
      for await (const key of err) {
        try {
          await compactVerify(token, key)
          return undefined
        } catch {
          // the next candidate
        }
      }
      return JwtStatus.verificationFail
    }
    if (err instanceof errors.JWKSNoMatchingKey) return JwtStatus.jwksKidAlgMismatch
    if (err instanceof errors.JOSENotSupported || err instanceof errors.JOSEAlgNotAllowed)
      return JwtStatus.headerNotImplementedAlg
    return JwtStatus.verificationFail
  }
}

/** Envoy's local reply: the status as body, `www-authenticate: Bearer realm="<uri>", error="invalid_token"`. */
function refuse(ctx: RequestContext, status: JwtStatusText): void {
  const code = status === JwtStatus.audienceNotAllowed ? 403 : 401
  ctx.responseCodeDetails = `jwt_authn_access_denied{${status.replace(/\s/g, '_')}}`
  const proto = ctx.rawHeader('x-forwarded-proto') ?? ctx.scheme
  const realm = `${proto}://${ctx.authority}${ctx.url.slice(0, MAX_REALM_PATH)}`
  const headers = ['www-authenticate', `Bearer realm="${realm}", error="invalid_token"`]
  if (isGrpcRequest(ctx)) sendGrpcReply(ctx, grpcStatusForHttp(code), status, headers)
  else sendResponse(ctx, code, status, headers)
}

/** What a verified token does to the request, in Envoy's order: payload header, token removal, claim headers. */
function applyOutputs(ctx: RequestContext, { jwt, rule, found }: VerifiedToken): void {
  const raw = ctx.req.rawHeaders
  if (rule.outputPayloadToHeader !== undefined) setHeader(raw, rule.outputPayloadToHeader, jwt.payloadSegment)
  // Envoy removes a token that came in a header; one in a query parameter or cookie stays.
  if (!rule.forwardOriginalToken && found.location.kind === 'header') removeHeader(raw, found.location.name)
  for (const { header, claimPath } of rule.claimToHeaders) {
    const value = claimText(jwt.payload, claimPath)
    if (value !== undefined) setHeader(raw, header, value)
  }
}

/** A claim as a header value: strings as they are, numbers and booleans written out; other kinds are not copied. */
function claimText(payload: Readonly<Record<string, unknown>>, path: readonly string[]): string | undefined {
  let value: unknown = payload
  for (const key of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
    value = (value as Record<string, unknown>)[key]
  }
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return undefined
}

function principalOf({ jwt, rule }: VerifiedToken): RequestPrincipal {
  const claims: Record<string, unknown> = { ...jwt.payload }
  // Envoy's normalize_payload_in_metadata: these claims become lists (request.auth.claims[scope]).
  for (const name of rule.spaceDelimitedClaims) {
    const value = claims[name]
    if (typeof value === 'string') claims[name] = value.split(' ').filter((part) => part !== '')
  }
  const azp = jwt.payload.azp
  return {
    principal: `${jwt.iss}/${jwt.sub}`,
    audiences: jwt.audiences,
    presenter: typeof azp === 'string' ? azp : '',
    claims,
  }
}

/** Replaces every `name` header (lowercase) of the raw list with one value. */
function setHeader(raw: string[], name: string, value: string): void {
  removeHeader(raw, name)
  raw.push(name, value)
}

function removeHeader(raw: string[], name: string): void {
  for (let i = raw.length - 2; i >= 0; i -= 2) {
    if (raw[i].length === name.length && raw[i].toLowerCase() === name) raw.splice(i, 2)
  }
}
