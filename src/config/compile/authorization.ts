// AuthorizationPolicy resources ──► the compiled AuthzPolicySet of this workload (HTTP and TCP views), as pilot's authz builder.

import type { AuthzFacts } from '../../authz/authz-facts.ts'
import { AuthzPolicies, type AuthzPolicySet, byName } from '../../authz/authz-policies.ts'
import { type Alternatives, type AuthzAction, AuthzRule, type Clause } from '../../authz/authz-rule.ts'
import { anyTest, ipBlocksTest, pathTest, type StringTest, stringTest } from '../../authz/value-match.ts'
import type { RequestPrincipal } from '../../protocol/peer-identity.ts'
import type { AuthorizationCondition, AuthorizationRule } from '../istio/authorization-policy.ts'
import { EXPERIMENTAL_PREFIX, splitWhenKey } from '../istio/authorization-when-key.ts'
import type { ConfigMessage } from '../messages.ts'
import type { NodeIdentity } from '../model.ts'
import type { AuthorizationPolicyResource, Resource } from '../resource.ts'

/** What a source/operation field or a `when` key reads, and whether it exists only for HTTP. */
interface Attribute {
  readonly httpOnly: boolean
  /** The clause's value test, compiled from its values. */
  compile(values: readonly string[], names: readonly string[]): (facts: AuthzFacts) => boolean
  observe(names: readonly string[]): (facts: AuthzFacts) => unknown
}

const peerPrincipal: Attribute = {
  httpOnly: false,
  // Istio matches `spiffe://<value>` against the peer certificate's URI SAN: no mTLS peer, no match.
  compile: (values) => {
    const test = anyTest(values.map((v) => stringTest(v)))
    return (f) => f.peer !== undefined && test(f.peer.principal)
  },
  observe: () => (f) => f.peer?.principal,
}

const peerNamespace: Attribute = {
  httpOnly: false,
  // Istio's regex `.*/ns/<value>/.*` over the peer principal: the namespace of an mTLS peer.
  compile: (values) => {
    const test = anyTest(values.map((v) => stringTest(v)))
    return (f) => f.peer !== undefined && test(f.peer.namespace)
  },
  observe: () => (f) => f.peer?.namespace,
}

const requestPrincipal: Attribute = {
  httpOnly: true,
  compile: (values) => {
    const tests = values.map(requestPrincipalTest)
    return (f) => {
      const rp = f.requestPrincipal
      if (rp === undefined) return false
      const [iss, sub] = issuerAndSubject(rp)
      for (const test of tests) if (test(iss, sub)) return true
      return false
    }
  },
  observe: () => (f) => f.requestPrincipal?.principal,
}

function ipAttribute(read: (f: AuthzFacts) => string): Attribute {
  return {
    httpOnly: false,
    compile: (values) => {
      const test = ipBlocksTest(values)
      return (f) => test(read(f))
    },
    observe: () => read,
  }
}

function stringAttribute(read: (f: AuthzFacts) => string, httpOnly: boolean, make = stringTest): Attribute {
  return {
    httpOnly,
    compile: (values) => {
      const test = anyTest(values.map((v) => make(v)))
      return (f) => test(read(f))
    },
    observe: () => read,
  }
}

const destinationPort: Attribute = {
  httpOnly: false,
  compile: (values) => {
    const ports = new Set(values.map(Number))
    return (f) => ports.has(f.port)
  },
  observe: () => (f) => f.port,
}

/** `hosts`: Istio's HostMatcher, case-insensitive, `*` only asks for the header. */
const host: Attribute = {
  httpOnly: true,
  compile: (values) => {
    const test = anyTest(values.map((v) => (v === '*' ? () => true : stringTest(v, true))))
    return (f) => f.host !== '' && test(f.host)
  },
  observe: () => (f) => f.host,
}

/** `request.headers[name]`: Istio's HeaderMatcher, where `*` is a presence match. */
const requestHeader: Attribute = {
  httpOnly: true,
  compile: (values, names) => {
    const name = names[0].toLowerCase()
    const test = anyTest(values.map((v) => (v === '*' ? () => true : stringTest(v))))
    return (f) => {
      const value = f.header(name)
      return value !== undefined && test(value)
    }
  },
  observe: (names) => (f) => f.header(names[0].toLowerCase()),
}

/** `request.auth.claims[a][b]`: a string claim, or any string in a list claim (Envoy's ListMatcher one_of). */
const requestClaim: Attribute = {
  httpOnly: true,
  compile: (values, names) => {
    const test = anyTest(values.map((v) => stringTest(v)))
    return (f) => {
      const claim = claimAt(f.requestPrincipal, names)
      if (typeof claim === 'string') return test(claim)
      if (Array.isArray(claim)) return claim.some((item) => typeof item === 'string' && test(item))
      return false
    }
  },
  observe: (names) => (f) => claimAt(f.requestPrincipal, names),
}

const audiences: Attribute = {
  httpOnly: true,
  compile: (values) => {
    const test = anyTest(values.map((v) => stringTest(v)))
    return (f) => f.requestPrincipal?.audiences.some(test) === true
  },
  observe: () => (f) => f.requestPrincipal?.audiences,
}

const presenter: Attribute = {
  httpOnly: true,
  compile: (values) => {
    const test = anyTest(values.map((v) => stringTest(v)))
    return (f) => f.requestPrincipal !== undefined && test(f.requestPrincipal.presenter)
  },
  observe: () => (f) => f.requestPrincipal?.presenter,
}

const SOURCE_FIELDS: Readonly<Record<string, Attribute>> = {
  principals: peerPrincipal,
  namespaces: peerNamespace,
  requestPrincipals: requestPrincipal,
  ipBlocks: ipAttribute((f) => f.sourceIp),
  remoteIpBlocks: ipAttribute((f) => f.remoteIp),
}

const OPERATION_FIELDS: Readonly<Record<string, Attribute>> = {
  hosts: host,
  ports: destinationPort,
  methods: stringAttribute((f) => f.method, true),
  paths: stringAttribute((f) => f.path, true, pathTest),
}

const WHEN_ATTRIBUTES: Readonly<Record<string, Attribute>> = {
  'request.headers': requestHeader,
  'source.ip': ipAttribute((f) => f.sourceIp),
  'remote.ip': ipAttribute((f) => f.remoteIp),
  'source.namespace': peerNamespace,
  'source.principal': peerPrincipal,
  'request.auth.principal': requestPrincipal,
  'request.auth.audiences': audiences,
  'request.auth.presenter': presenter,
  'request.auth.claims': requestClaim,
  'destination.ip': ipAttribute((f) => f.destinationIp),
  'destination.port': destinationPort,
  'connection.sni': stringAttribute((f) => f.sni, false),
}

type View = 'http' | 'tcp'

/** A clause left out of a view: why, for an ALLOW rule that is then skipped whole. */
class LeftOut {
  readonly reason: string

  constructor(reason: string) {
    this.reason = reason
  }
}

/** The policies that apply to this workload, compiled; undefined when none does (requests then pay nothing). */
export function compileAuthorization(
  resources: readonly Resource[],
  node: NodeIdentity,
  rootNamespace: string,
  warnings: ConfigMessage[],
): AuthzPolicySet | undefined {
  const applying: AuthorizationPolicyResource[] = []
  for (const r of resources) {
    if (r.kind !== 'AuthorizationPolicy') continue
    if (r.namespace !== node.namespace && r.namespace !== rootNamespace) continue
    const at = (path: (string | number)[]): ConfigMessage => ({
      severity: 'warning',
      file: r.source.file,
      line: r.lineOf(path),
      message: '',
    })
    if (r.spec.targetRef !== undefined || (r.spec.targetRefs ?? []).length > 0) {
      const field = r.spec.targetRef !== undefined ? 'targetRef' : 'targetRefs'
      warnings.push({
        ...at([field]),
        message: `AuthorizationPolicy ${r.namespace}/${r.name}: ${field} is not supported (it selects gateways and waypoints, not sidecars): the policy does not apply to this proxy`,
      })
      continue
    }
    const labels = r.spec.selector?.matchLabels ?? {}
    if (!Object.entries(labels).every(([k, v]) => node.labels[k] === v)) continue
    if (r.spec.action === 'CUSTOM')
      warnings.push({
        ...at(['action']),
        message: `AuthorizationPolicy ${r.namespace}/${r.name}: action CUSTOM needs the extension provider '${r.spec.provider?.name ?? ''}', and Outrigger has none: requests its rules match are denied (as istiod does when a provider is missing)`,
      })
    r.spec.rules.forEach((rule, i) => {
      ;(rule.when ?? []).forEach((condition, j) => {
        if (condition.key.startsWith(EXPERIMENTAL_PREFIX))
          warnings.push({
            ...at(['rules', i, 'when', j, 'key']),
            message: `AuthorizationPolicy ${r.namespace}/${r.name}: condition key '${condition.key}' (Envoy filter metadata) is not supported: an ALLOW rule using it never matches, a DENY or AUDIT rule ignores it`,
          })
      })
    })
    applying.push(r)
  }
  if (applying.length === 0) return undefined
  return {
    http: compileView(applying, rootNamespace, 'http'),
    tcp: compileView(applying, rootNamespace, 'tcp'),
  }
}

function compileView(
  policies: readonly AuthorizationPolicyResource[],
  rootNamespace: string,
  view: View,
): AuthzPolicies {
  const custom: AuthzRule[] = []
  const audit: AuthzRule[] = []
  const rootDeny: AuthzRule[] = []
  const deny: AuthzRule[] = []
  const allow: AuthzRule[] = []
  for (const p of policies) {
    const action = p.spec.action
    const rules =
      p.spec.rules.length === 0
        ? // Istio's rbacPolicyMatchNever: a policy without rules is rule[0], which matches nothing.
          [ruleOf(p, 0, undefined, view)]
        : p.spec.rules.map((rule, i) => ruleOf(p, i, rule, view))
    const list =
      action === 'CUSTOM'
        ? custom
        : action === 'AUDIT'
          ? audit
          : action === 'ALLOW'
            ? allow
            : p.namespace === rootNamespace
              ? rootDeny
              : deny
    list.push(...rules)
  }
  return new AuthzPolicies({ custom, audit, deny: [...byName(rootDeny), ...byName(deny)], allow })
}

function ruleOf(
  p: AuthorizationPolicyResource,
  index: number,
  rule: AuthorizationRule | undefined,
  view: View,
): AuthzRule {
  const base = {
    namespace: p.namespace,
    policyName: p.name,
    index,
    action: p.spec.action as AuthzAction,
    source: `${p.source.file}:${p.source.line}`,
  }
  if (rule === undefined)
    return new AuthzRule({
      ...base,
      from: undefined,
      to: undefined,
      when: [],
      skipped: 'the policy has no rules',
    })
  // pilot's rule.checkError: on an ALLOW rule a field that cannot be generated drops the whole rule (fewer
  // requests allowed); on DENY, AUDIT and CUSTOM only that field is dropped (more requests denied).
  const strict = p.spec.action === 'ALLOW'
  let leftOut: LeftOut | undefined
  const keep = (clause: Clause | LeftOut): clause is Clause => {
    if (clause instanceof LeftOut) {
      leftOut ??= clause
      return false
    }
    return true
  }
  const from = rule.from?.map((entry, i) =>
    fieldClauses(entry.source ?? {}, SOURCE_FIELDS, `from[${i}].source`, view).filter(keep),
  )
  const to = rule.to?.map((entry, i) =>
    fieldClauses(entry.operation ?? {}, OPERATION_FIELDS, `to[${i}].operation`, view).filter(keep),
  )
  const when = (rule.when ?? []).flatMap((condition, i) => conditionClauses(condition, i, view)).filter(keep)
  if (strict && leftOut !== undefined)
    return new AuthzRule({ ...base, from: undefined, to: undefined, when: [], skipped: leftOut.reason })
  return new AuthzRule({ ...base, from: from as Alternatives | undefined, to, when })
}

function fieldClauses(
  fields: Readonly<Record<string, readonly string[] | undefined>>,
  attributes: Readonly<Record<string, Attribute>>,
  where: string,
  view: View,
): (Clause | LeftOut)[] {
  const out: (Clause | LeftOut)[] = []
  for (const [name, attribute] of Object.entries(attributes)) {
    const notName = `not${name[0].toUpperCase()}${name.slice(1)}`
    for (const [field, negated] of [
      [name, false],
      [notName, true],
    ] as const) {
      const values = fields[field]
      if (values === undefined || values.length === 0) continue
      if (attribute.httpOnly && view === 'tcp') {
        out.push(new LeftOut(`${where}.${field} is HTTP only and this is a TCP connection`))
        continue
      }
      out.push({
        field: `${where}.${field}`,
        values,
        negated,
        matches: attribute.compile(values, []),
        observe: attribute.observe([]),
      })
    }
  }
  return out
}

function conditionClauses(
  condition: AuthorizationCondition,
  index: number,
  view: View,
): (Clause | LeftOut)[] {
  const key = condition.key
  const where = `when[${index}] ${key}`
  if (key.startsWith(EXPERIMENTAL_PREFIX))
    return [new LeftOut(`${where}: Envoy filter metadata is not supported`)]
  // The schema accepted only known keys of the right shape.
  const split = splitWhenKey(key) ?? { attribute: key, names: [] }
  const attribute = WHEN_ATTRIBUTES[split.attribute]
  if (attribute.httpOnly && view === 'tcp')
    return [new LeftOut(`${where} is HTTP only and this is a TCP connection`)]
  const out: Clause[] = []
  for (const [values, negated, label] of [
    [condition.values, false, 'values'],
    [condition.notValues, true, 'notValues'],
  ] as const) {
    if (values === undefined || values.length === 0) continue
    out.push({
      field: `${where} ${label}`,
      values,
      negated,
      matches: attribute.compile(values, split.names),
      observe: attribute.observe(split.names),
    })
  }
  return out
}

/** Istio's requestPrincipalGenerator: the value split at its last `/` into issuer and subject tests. */
function requestPrincipalTest(value: string): (iss: string, sub: string) => boolean {
  const any: StringTest = (v) => v.length > 0
  const exact =
    (x: string): StringTest =>
    (v) =>
      v === x
  const slash = value.lastIndexOf('/')
  const found = slash >= 0
  const iss = found ? value.slice(0, slash) : value
  const sub = found ? value.slice(slash + 1) : ''
  let matchIss: StringTest
  let matchSub: StringTest
  if (value === '*') {
    matchIss = any
    matchSub = any
  } else if (value.startsWith('*')) {
    if (found) {
      const suffix = iss.slice(1)
      matchIss = iss === '*' ? any : (v) => v.endsWith(suffix)
      matchSub = exact(sub)
    } else {
      const suffix = value.slice(1)
      matchIss = any
      matchSub = (v) => v.endsWith(suffix)
    }
  } else if (value.endsWith('*')) {
    if (found) {
      const prefix = sub.slice(0, -1)
      matchIss = exact(iss)
      matchSub = sub === '*' ? any : (v) => v.startsWith(prefix)
    } else {
      const prefix = value.slice(0, -1)
      matchIss = (v) => v.startsWith(prefix)
      matchSub = any
    }
  } else {
    matchIss = exact(iss)
    matchSub = exact(sub)
  }
  return (i, s) => matchIss(i) && matchSub(s)
}

/** The token's `iss` and `sub` claims (Istio's request principal is `<iss>/<sub>`). */
function issuerAndSubject(rp: RequestPrincipal): [string, string] {
  const { iss, sub } = rp.claims
  if (typeof iss === 'string' && typeof sub === 'string') return [iss, sub]
  const slash = rp.principal.lastIndexOf('/')
  return slash === -1 ? [rp.principal, ''] : [rp.principal.slice(0, slash), rp.principal.slice(slash + 1)]
}

function claimAt(rp: RequestPrincipal | undefined, names: readonly string[]): unknown {
  let value: unknown = rp?.claims
  for (const name of names) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
    value = Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined
  }
  return value
}
