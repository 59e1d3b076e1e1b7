// The AuthorizationPolicies that apply to this workload, compiled, and Istio's decision over them (CUSTOM, DENY, ALLOW).

import type { AuthzFacts } from './authz-facts.ts'
import type { AuthzRule } from './authz-rule.ts'

/** One rule's part in an explanation. */
export interface AuthzStep {
  readonly rule: string
  readonly action: AuthzRule['action']
  readonly policy: string
  readonly source: string
  readonly matched: boolean
  /** The first field that did not match (or why the rule never matches); undefined when it matched. */
  readonly mismatch: string | undefined
}

/** What `outrigger authz check` and admin /authz print. */
export interface AuthzExplanation {
  readonly allowed: boolean
  /** The Envoy RBAC policy that decided (`ns[..]-policy[..]-rule[..]`), `none` (no ALLOW rule matched), or '' (no policy denied). */
  readonly decidedBy: string
  /** Envoy's %RESPONSE_CODE_DETAILS% for a denial, '' when allowed. */
  readonly details: string
  /** AUDIT rules that matched (they never change the decision). */
  readonly audited: readonly string[]
  /** Every rule evaluated, in evaluation order. */
  readonly steps: readonly AuthzStep[]
}

/** Envoy's RBAC denial details (source/extensions/filters/common/rbac/utility.h responseDetail). */
export function denialDetails(policy: string): string {
  return `rbac_access_denied_matched_policy[${policy}]`
}

/**
 * The rules in the order Envoy's filters run them as Istio builds them (pilot/pkg/security/authz/builder):
 * CUSTOM (with no extension provider, Istio's deny rules for the policy), AUDIT, root-namespace DENY, DENY,
 * ALLOW. Within one filter Envoy's RBAC keeps its policies in a std::map, so the first match by name decides.
 */
export class AuthzPolicies {
  readonly custom: readonly AuthzRule[]
  readonly audit: readonly AuthzRule[]
  /** Root-namespace DENY rules first (their own filter, istio.authorization.deny.root), then the rest. */
  readonly deny: readonly AuthzRule[]
  readonly allow: readonly AuthzRule[]

  constructor(rules: { custom: AuthzRule[]; audit: AuthzRule[]; deny: AuthzRule[]; allow: AuthzRule[] }) {
    this.custom = byName(rules.custom)
    this.audit = byName(rules.audit)
    this.deny = rules.deny
    this.allow = byName(rules.allow)
  }

  /** The data path's check: the deciding policy name when denied (`none`: no ALLOW rule matched), else undefined. */
  denial(facts: AuthzFacts): string | undefined {
    for (const rule of this.custom) if (rule.matches(facts)) return rule.name
    for (const rule of this.deny) if (rule.matches(facts)) return rule.name
    if (this.allow.length === 0) return undefined
    for (const rule of this.allow) if (rule.matches(facts)) return undefined
    return 'none'
  }

  /** The same decision with every rule's outcome and the first field that did not match (off the data path). */
  explain(facts: AuthzFacts): AuthzExplanation {
    const steps: AuthzStep[] = []
    const audited: string[] = []
    const visit = (rule: AuthzRule): boolean => {
      const mismatch = rule.mismatch(facts)
      const matched = mismatch === undefined
      steps.push({
        rule: rule.name,
        action: rule.action,
        policy: rule.policy,
        source: rule.source,
        matched,
        mismatch,
      })
      return matched
    }
    const denied = (name: string): AuthzExplanation => ({
      allowed: false,
      decidedBy: name,
      details: denialDetails(name),
      audited,
      steps,
    })
    for (const rule of this.custom) if (visit(rule)) return denied(rule.name)
    for (const rule of this.audit) if (visit(rule)) audited.push(rule.name)
    for (const rule of this.deny) if (visit(rule)) return denied(rule.name)
    if (this.allow.length === 0) return { allowed: true, decidedBy: '', details: '', audited, steps }
    for (const rule of this.allow)
      if (visit(rule)) return { allowed: true, decidedBy: rule.name, details: '', audited, steps }
    return denied('none')
  }
}

/** A workload's policies as its HTTP filter chains and its TCP filter chains see them (HTTP-only fields differ). */
export interface AuthzPolicySet {
  readonly http: AuthzPolicies
  readonly tcp: AuthzPolicies
}

export function byName(rules: AuthzRule[]): AuthzRule[] {
  return rules.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}
