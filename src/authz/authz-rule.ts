// One compiled AuthorizationPolicy rule: Envoy RBAC's policy `ns[NS]-policy[NAME]-rule[N]` as clauses over AuthzFacts.

import type { AuthzFacts } from './authz-facts.ts'

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM'

/** One field of a source, operation or condition: OR over its values, negated for the not* forms. */
export interface Clause {
  /** Where it was written, e.g. `from[0].source.principals` or `when[1] request.headers[x-user]`. */
  readonly field: string
  readonly values: readonly string[]
  /** notPrincipals, notValues, …: holds when no value matches. */
  readonly negated: boolean
  /** True when a value matches (before negation); built at config load. */
  readonly matches: (facts: AuthzFacts) => boolean
  /** The attribute the clause reads, for explanations only (never on the data path). */
  readonly observe: (facts: AuthzFacts) => unknown
}

/** A list of alternatives (`from` or `to` entries), each an AND of clauses; an empty entry matches anything. */
export type Alternatives = readonly (readonly Clause[])[]

export interface AuthzRuleInit {
  readonly namespace: string
  readonly policyName: string
  readonly index: number
  readonly action: AuthzAction
  /** `file:line` of the policy. */
  readonly source: string
  /** undefined: the rule has no `from` (any source). */
  readonly from: Alternatives | undefined
  readonly to: Alternatives | undefined
  readonly when: readonly Clause[]
  /** Set when the rule can never match, with the reason (an ALLOW rule naming HTTP-only fields on TCP, …). */
  readonly skipped?: string
}

export class AuthzRule {
  /** Envoy RBAC's policy name as Istio builds it (pilot/pkg/security/authz/builder policyName). */
  readonly name: string
  readonly action: AuthzAction
  /** `namespace/name` of the AuthorizationPolicy. */
  readonly policy: string
  readonly source: string
  readonly from: Alternatives | undefined
  readonly to: Alternatives | undefined
  readonly when: readonly Clause[]
  readonly skipped: string | undefined

  constructor(init: AuthzRuleInit) {
    this.name = `ns[${init.namespace}]-policy[${init.policyName}]-rule[${init.index}]`
    this.action = init.action
    this.policy = `${init.namespace}/${init.policyName}`
    this.source = init.source
    this.from = init.from
    this.to = init.to
    this.when = init.when
    this.skipped = init.skipped
  }

  /** True when the request or connection matches every part of the rule. */
  matches(facts: AuthzFacts): boolean {
    if (this.skipped !== undefined) return false
    return (
      anyAlternative(this.from, facts) &&
      anyAlternative(this.to, facts) &&
      firstFailed(this.when, facts) === -1
    )
  }

  /** Why the rule does not match: the first clause that failed (for each alternative), or undefined if it matches. */
  mismatch(facts: AuthzFacts): string | undefined {
    if (this.skipped !== undefined) return this.skipped
    const from = alternativesMismatch(this.from, facts, 'source')
    if (from !== undefined) return from
    const to = alternativesMismatch(this.to, facts, 'operation')
    if (to !== undefined) return to
    const failed = firstFailed(this.when, facts)
    return failed === -1 ? undefined : describe(this.when[failed], facts)
  }
}

/** The first failed clause of each alternative, when none of them matches. */
function alternativesMismatch(
  list: Alternatives | undefined,
  facts: AuthzFacts,
  what: string,
): string | undefined {
  if (list === undefined || anyAlternative(list, facts)) return undefined
  return list
    .map((entry) => describe(entry[firstFailed(entry, facts)], facts))
    .join(`; in the next ${what}: `)
}

function holds(clause: Clause, facts: AuthzFacts): boolean {
  return clause.matches(facts) !== clause.negated
}

function firstFailed(clauses: readonly Clause[], facts: AuthzFacts): number {
  for (let i = 0; i < clauses.length; i++) if (!holds(clauses[i], facts)) return i
  return -1
}

function anyAlternative(list: Alternatives | undefined, facts: AuthzFacts): boolean {
  if (list === undefined) return true
  for (const entry of list) if (firstFailed(entry, facts) === -1) return true
  return false
}

function describe(clause: Clause, facts: AuthzFacts): string {
  const values = JSON.stringify(clause.values)
  const got = JSON.stringify(clause.observe(facts) ?? null)
  return clause.negated
    ? `${clause.field} ${values} matched ${got}`
    : `${clause.field} ${values} did not match ${got}`
}
