// Picks the RequestAuthentications that apply to this workload (Istio's root, namespace and selector rules) and compiles their JWT rules.

import { parseDurationMs } from '../duration.ts'
import type { JwtRuleSpec } from '../istio/request-authentication.ts'
import {
  type JwtLocation,
  type JwtRuleModel,
  type RequestAuthenticationModel,
  sanitizeAudience,
} from '../jwt-policy.ts'
import type { NodeIdentity } from '../model.ts'
import type { RequestAuthenticationResource, Resource } from '../resource.ts'

/** Istio's JWKS fetch timeout when a rule sets none (policy_applier.go convertToEnvoyJwtConfig). */
const DEFAULT_JWKS_TIMEOUT_MS = 5_000

/** Envoy's default locations when a rule names none: `Authorization: Bearer <token>`, then `?access_token=`. */
const DEFAULT_LOCATIONS: readonly JwtLocation[] = [
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
]

/** Always space-delimited, whatever the rule says (policy_applier.go buildSpaceDelimitedClaims). */
const DEFAULT_SPACE_DELIMITED = ['permission', 'scope']

/**
 * The JWT rules of every RequestAuthentication that applies to the workload, as Istio's
 * getConfigsForWorkload selects them: those in the workload's namespace and in the root namespace,
 * without a selector or with a selector the workload's labels match. Their rules are merged and
 * sorted by issuer (policy_applier.go newPolicyApplier); undefined when there are none.
 */
export function compileRequestAuthentication(
  resources: readonly Resource[],
  node: NodeIdentity,
  rootNamespace: string,
): RequestAuthenticationModel | undefined {
  const rules: JwtRuleModel[] = []
  for (const r of resources) {
    if (r.kind !== 'RequestAuthentication' || !applies(r, node, rootNamespace)) continue
    for (const rule of r.spec.jwtRules) rules.push(compileRule(rule, `${r.namespace}/${r.name}`))
  }
  if (rules.length === 0) return undefined
  rules.sort((a, b) => (a.issuer < b.issuer ? -1 : a.issuer > b.issuer ? 1 : 0))
  return { rules }
}

function applies(r: RequestAuthenticationResource, node: NodeIdentity, rootNamespace: string): boolean {
  if (r.namespace !== node.namespace && r.namespace !== rootNamespace) return false
  const selector = r.spec.selector?.matchLabels ?? {}
  return Object.entries(selector).every(([key, value]) => node.labels[key] === value)
}

function compileRule(rule: JwtRuleSpec, policy: string): JwtRuleModel {
  const locations: JwtLocation[] = [
    ...rule.fromHeaders.map(
      (h): JwtLocation => ({ kind: 'header', name: h.name.toLowerCase(), prefix: h.prefix ?? '' }),
    ),
    ...rule.fromParams.map((name): JwtLocation => ({ kind: 'param', name })),
    ...rule.fromCookies.map((name): JwtLocation => ({ kind: 'cookie', name })),
  ]
  const timeoutMs = rule.timeout === undefined ? DEFAULT_JWKS_TIMEOUT_MS : parseDurationMs(rule.timeout)
  return {
    issuer: rule.issuer,
    audiences: rule.audiences.map(sanitizeAudience),
    locations: locations.length > 0 ? locations : DEFAULT_LOCATIONS,
    // "jwksUri will be ignored if [jwks is set]" (request_authentication.proto).
    jwks:
      rule.jwks !== undefined
        ? { kind: 'inline', jwks: JSON.parse(rule.jwks) as { keys: unknown[] } }
        : rule.jwksUri !== undefined
          ? { kind: 'uri', uri: rule.jwksUri, timeoutMs }
          : { kind: 'discovery', issuer: rule.issuer, timeoutMs },
    outputPayloadToHeader:
      rule.outputPayloadToHeader === undefined || rule.outputPayloadToHeader === ''
        ? undefined
        : rule.outputPayloadToHeader.toLowerCase(),
    forwardOriginalToken: rule.forwardOriginalToken,
    claimToHeaders: rule.outputClaimToHeaders.map((c) => ({
      header: c.header.toLowerCase(),
      claimPath: c.claim.split('.'),
    })),
    spaceDelimitedClaims: new Set([...DEFAULT_SPACE_DELIMITED, ...rule.spaceDelimitedClaims]),
    policy,
  }
}
