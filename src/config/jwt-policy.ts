// The compiled form of the RequestAuthentications that apply to this workload: the JWT rules its inbound side verifies.

/** Where a rule looks for a token (Envoy's JwtProvider from_headers, from_params, from_cookies). */
export type JwtLocation =
  | { readonly kind: 'header' /** lowercase */; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string }

/**
 * Where a rule's keys come from: `inline` (`jwks`), `uri` (`jwksUri`), or `discovery` (neither: the
 * issuer's OpenID discovery document names the key set, as istiod's JwtKeyResolver reads it).
 */
export type JwksSpec =
  | { readonly kind: 'inline'; readonly jwks: { readonly keys: readonly unknown[] } }
  | { readonly kind: 'uri'; readonly uri: string; readonly timeoutMs: number }
  | { readonly kind: 'discovery'; readonly issuer: string; readonly timeoutMs: number }

export interface ClaimToHeader {
  /** lowercase */
  readonly header: string
  /** The claim's path: `a.b` reads the nested claim `b` of `a`. */
  readonly claimPath: readonly string[]
}

/** One `jwtRules[]` entry, compiled. */
export interface JwtRuleModel {
  readonly issuer: string
  /** Allowed audiences, without `http://`/`https://` and a trailing slash (jwt_verify_lib's CheckAudience); empty: any. */
  readonly audiences: readonly string[]
  readonly locations: readonly JwtLocation[]
  readonly jwks: JwksSpec
  /** lowercase, or undefined */
  readonly outputPayloadToHeader: string | undefined
  readonly forwardOriginalToken: boolean
  readonly claimToHeaders: readonly ClaimToHeader[]
  /** Claims whose string value is a space-separated list (`scope`, `permission` and the rule's own). */
  readonly spaceDelimitedClaims: ReadonlySet<string>
  /** `<namespace>/<name>` of the RequestAuthentication the rule came from, for logs. */
  readonly policy: string
}

export interface RequestAuthenticationModel {
  /** Sorted by issuer, as Istio's policy applier sorts them. */
  readonly rules: readonly JwtRuleModel[]
}

/** jwt_verify_lib's audience comparison ignores an `http://` or `https://` prefix and a trailing slash. */
export function sanitizeAudience(audience: string): string {
  let out = audience
  if (out.startsWith('http://')) out = out.slice(7)
  else if (out.startsWith('https://')) out = out.slice(8)
  return out.endsWith('/') ? out.slice(0, -1) : out
}
