// The "Beyond Envoy" authorization check: a hypothetical request's decision, with the deciding rule and the first field that missed.

import type { AuthzFacts } from '../authz/authz-facts.ts'
import type { AuthzExplanation, AuthzPolicySet } from '../authz/authz-policies.ts'

/** What `outrigger authz check` flags and admin `/authz` parameters describe. */
export interface AuthzQuery {
  readonly method?: string
  readonly path?: string
  readonly host?: string
  readonly port?: number
  /** The mTLS peer: a SPIFFE ID, with or without `spiffe://`. */
  readonly principal?: string
  /** The peer's namespace when it differs from the one in `principal` (or without a principal). */
  readonly namespace?: string
  /** `<iss>/<sub>` of a verified JWT. */
  readonly requestPrincipal?: string
  /** `name:value` pairs. */
  readonly headers?: readonly string[]
  readonly sourceIp?: string
  readonly destinationIp?: string
  readonly sni?: string
  /** Evaluates the policies as a TCP listener sees them (HTTP-only fields left out). */
  readonly tcp?: boolean
}

/** A usage problem in a query (a header without `:`, a port that is not a number). */
export class AuthzQueryError extends Error {
  readonly code = 'AUTHZ_QUERY_INVALID'
}

export function factsOf(query: AuthzQuery): AuthzFacts {
  const headers = new Map<string, string>()
  for (const header of query.headers ?? []) {
    const colon = header.indexOf(':')
    if (colon <= 0) throw new AuthzQueryError(`header '${header}' is not name:value`)
    const name = header.slice(0, colon).trim().toLowerCase()
    const value = header.slice(colon + 1).trim()
    const before = headers.get(name)
    headers.set(name, before === undefined ? value : `${before},${value}`)
  }
  const port = query.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new AuthzQueryError(`port '${query.port}' is not a port number`)
  const sourceIp = query.sourceIp ?? '127.0.0.1'
  return {
    method: query.tcp === true ? '' : (query.method ?? 'GET').toUpperCase(),
    path: query.tcp === true ? '' : withoutQuery(query.path ?? '/'),
    host: query.host ?? headers.get('host') ?? '',
    port,
    sourceIp,
    remoteIp: sourceIp,
    destinationIp: query.destinationIp ?? '127.0.0.1',
    sni: query.sni ?? '',
    peer: peerOf(query.principal, query.namespace),
    requestPrincipal: requestPrincipalOf(query.requestPrincipal),
    header: (name) => headers.get(name),
  }
}

function withoutQuery(path: string): string {
  const q = path.indexOf('?')
  return q === -1 ? path : path.slice(0, q)
}

function peerOf(principal: string | undefined, namespace: string | undefined): AuthzFacts['peer'] {
  if (principal === undefined && namespace === undefined) return undefined
  const id = (principal ?? '').replace(/^spiffe:\/\//, '')
  return {
    principal: id,
    namespace: namespace ?? /\/ns\/([^/]+)\//.exec(`${id}/`)?.[1] ?? '',
    trustDomain: id.split('/')[0],
  }
}

function requestPrincipalOf(value: string | undefined): AuthzFacts['requestPrincipal'] {
  if (value === undefined) return undefined
  const slash = value.lastIndexOf('/')
  const iss = slash === -1 ? value : value.slice(0, slash)
  const sub = slash === -1 ? '' : value.slice(slash + 1)
  return { principal: value, audiences: [], presenter: '', claims: { iss, sub } }
}

/** The decision over the workload's policies; with none, every request is allowed. */
export function checkAuthz(authz: AuthzPolicySet | undefined, query: AuthzQuery): AuthzExplanation {
  const facts = factsOf(query)
  if (authz === undefined) return { allowed: true, decidedBy: '', details: '', audited: [], steps: [] }
  return (query.tcp === true ? authz.tcp : authz.http).explain(facts)
}

/** The explanation as lines: the decision and what decided it, then every rule in evaluation order. */
export function formatAuthz(explanation: AuthzExplanation, hasPolicies: boolean): string {
  const lines: string[] = []
  const { allowed, decidedBy } = explanation
  const decider = explanation.steps.find((s) => s.rule === decidedBy)
  if (!hasPolicies) lines.push('ALLOW: no AuthorizationPolicy applies to this workload')
  else if (decider !== undefined)
    lines.push(
      `${allowed ? 'ALLOW' : 'DENY'} by ${decider.rule} (${decider.action} policy ${decider.policy} at ${decider.source})`,
    )
  else if (allowed) lines.push('ALLOW: no CUSTOM or DENY rule matched, and there is no ALLOW policy')
  else lines.push('DENY: ALLOW policies apply and none of their rules matched (allow-nothing)')
  if (!allowed) lines.push(`details: ${explanation.details}`)
  for (const audited of explanation.audited) lines.push(`audited by ${audited}`)
  if (explanation.steps.length > 0) lines.push('rules in evaluation order:')
  for (const step of explanation.steps)
    lines.push(
      `  ${step.action.padEnd(6)} ${step.rule}: ${step.matched ? 'matched' : `no match: ${step.mismatch}`}`,
    )
  return `${lines.join('\n')}\n`
}
