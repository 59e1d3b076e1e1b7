import { describe, expect, it } from 'vitest'
import type { AuthzFacts } from '../../authz/authz-facts.ts'
import type { AuthzPolicySet } from '../../authz/authz-policies.ts'
import type { PeerIdentity, RequestPrincipal } from '../../protocol/peer-identity.ts'
import { formatMessage } from '../messages.ts'
import type { NodeIdentity } from '../model.ts'
import { parseResources } from '../parse-resources.ts'
import { compileAuthorization } from './authorization.ts'

const node: NodeIdentity = {
  workload: 'reviews',
  namespace: 'default',
  serviceAccount: 'reviews',
  labels: { app: 'reviews', version: 'v1' },
  cluster: 'Kubernetes',
  trustDomain: 'cluster.local',
  locality: '',
}

function policies(yaml: string, options: { warnings?: string[] } = {}): AuthzPolicySet {
  const parsed = parseResources(yaml, 'p.yaml', 'default')
  const errors = parsed.messages.filter((m) => m.severity === 'error')
  expect(errors.map(formatMessage)).toEqual([])
  const warnings: Parameters<typeof compileAuthorization>[3] = []
  const set = compileAuthorization(parsed.resources, node, 'istio-system', warnings)
  options.warnings?.push(...warnings.map(formatMessage))
  if (set === undefined) throw new Error('no policy applies')
  return set
}

function policy(name: string, spec: string, namespace = 'default'): string {
  return `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${spec
  .split('\n')
  .map((line) => `  ${line}`)
  .join('\n')}
`
}

function peer(principal: string): PeerIdentity {
  const ns = /\/ns\/([^/]+)\//.exec(principal)?.[1] ?? ''
  return { principal, namespace: ns, trustDomain: principal.split('/')[0] }
}

function jwt(iss: string, sub: string, claims: Record<string, unknown> = {}): RequestPrincipal {
  const aud = claims.aud
  return {
    principal: `${iss}/${sub}`,
    audiences: Array.isArray(aud) ? (aud as string[]) : typeof aud === 'string' ? [aud] : [],
    presenter: typeof claims.azp === 'string' ? claims.azp : '',
    claims: { iss, sub, ...claims },
  }
}

interface Request extends Omit<AuthzFacts, 'header'> {
  readonly headers: Record<string, string>
}

function facts(overrides: Partial<Request> = {}): AuthzFacts {
  const r: Request = {
    method: 'GET',
    path: '/',
    host: 'reviews.default.svc.cluster.local',
    port: 9080,
    sourceIp: '10.0.0.7',
    remoteIp: '10.0.0.7',
    destinationIp: '10.0.0.1',
    sni: '',
    peer: undefined,
    requestPrincipal: undefined,
    headers: {},
    ...overrides,
  }
  return { ...r, header: (name) => r.headers[name] }
}

/** 'allow' or the deciding policy of a denial over the HTTP view. */
function decide(set: AuthzPolicySet, request: Partial<Request>): string {
  return set.http.denial(facts(request)) ?? 'allow'
}

describe('AuthorizationPolicy evaluation (istio/api security/v1beta1/authorization_policy.proto)', () => {
  it('applies no policy from another namespace, and every policy of the root namespace', () => {
    const parsed = parseResources(policy('other', 'action: DENY\nrules: [{}]', 'prod'), 'p.yaml', 'default')
    expect(compileAuthorization(parsed.resources, node, 'istio-system', [])).toBeUndefined()
    const root = policies(
      policy('mesh-deny', 'action: DENY\nrules: [{to: [{operation: {paths: [/x]}}]}]', 'istio-system'),
    )
    expect(decide(root, { path: '/x' })).toBe('ns[istio-system]-policy[mesh-deny]-rule[0]')
  })

  it('selects by selector.matchLabels against the workload labels', () => {
    const yaml =
      policy(
        'mine',
        'selector: {matchLabels: {app: reviews}}\naction: DENY\nrules: [{to: [{operation: {paths: [/a]}}]}]',
      ) +
      policy(
        'theirs',
        'selector: {matchLabels: {app: ratings}}\naction: DENY\nrules: [{to: [{operation: {paths: [/b]}}]}]',
      )
    const set = policies(yaml)
    expect(decide(set, { path: '/a' })).toBe('ns[default]-policy[mine]-rule[0]')
    expect(decide(set, { path: '/b' })).toBe('allow')
  })

  it('ALLOW with no rule matching denies (allow-nothing), with the policy none', () => {
    const set = policies(policy('allow-get', 'rules: [{to: [{operation: {methods: [GET]}}]}]'))
    expect(decide(set, { method: 'GET' })).toBe('allow')
    expect(decide(set, { method: 'POST' })).toBe('none')
    // spec: {} is allow-nothing: an ALLOW policy whose only rule never matches.
    expect(decide(policies(policy('nothing', '{}')), {})).toBe('none')
  })

  it('DENY wins over ALLOW; a DENY policy without rules denies nothing', () => {
    const yaml =
      policy('allow-all', 'rules: [{}]') +
      policy('deny-admin', 'action: DENY\nrules: [{to: [{operation: {paths: ["/admin*"]}}]}]') +
      policy('deny-nothing', 'action: DENY')
    const set = policies(yaml)
    expect(decide(set, { path: '/admin/users' })).toBe('ns[default]-policy[deny-admin]-rule[0]')
    expect(decide(set, { path: '/public' })).toBe('allow')
  })

  it('AUDIT never changes the decision, and the explanation lists it', () => {
    const set = policies(policy('audit-all', 'action: AUDIT\nrules: [{}]'))
    expect(decide(set, {})).toBe('allow')
    expect(set.http.explain(facts()).audited).toEqual(['ns[default]-policy[audit-all]-rule[0]'])
  })

  it('CUSTOM without an extension provider denies what its rules match, with a warning (istiod getBadCustomDenyRules)', () => {
    const warnings: string[] = []
    const set = policies(
      policy(
        'ext',
        'action: CUSTOM\nprovider: {name: opa}\nrules: [{to: [{operation: {paths: ["/ext*"]}}]}]',
      ),
      { warnings },
    )
    expect(decide(set, { path: '/ext/1' })).toBe('ns[default]-policy[ext]-rule[0]')
    expect(decide(set, { path: '/other' })).toBe('allow')
    expect(warnings).toEqual([
      expect.stringMatching(
        /^p\.yaml:6: warning: AuthorizationPolicy default\/ext: action CUSTOM needs the extension provider 'opa'/,
      ),
    ])
  })

  it('principals: exact, prefix, suffix and * (any mTLS peer); no peer never matches; notPrincipals', () => {
    const set = policies(
      policy(
        'p',
        `rules:
- from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}]
- from: [{source: {principals: ["cluster.local/ns/prod/*"]}}]
- from: [{source: {principals: ["*/sa/admin"]}}]`,
      ) +
        policy(
          'any-peer',
          `action: DENY\nrules: [{from: [{source: {notPrincipals: ["*"]}}], to: [{operation: {paths: [/peers-only]}}]}]`,
        ),
    )
    const sleep = peer('cluster.local/ns/default/sa/sleep')
    expect(decide(set, { peer: sleep })).toBe('allow')
    expect(decide(set, { peer: peer('cluster.local/ns/default/sa/other') })).toBe('none')
    expect(decide(set, { peer: peer('cluster.local/ns/prod/sa/x') })).toBe('allow')
    expect(decide(set, { peer: peer('other.domain/ns/x/sa/admin') })).toBe('allow')
    expect(decide(set, {})).toBe('none')
    expect(decide(set, { peer: sleep, path: '/peers-only' })).toBe('allow')
    expect(
      decide(
        policies(policy('any-peer', 'action: DENY\nrules: [{from: [{source: {notPrincipals: ["*"]}}]}]')),
        {},
      ),
    ).toBe('ns[default]-policy[any-peer]-rule[0]')
  })

  it('namespaces and notNamespaces read the peer namespace', () => {
    const set = policies(
      policy('ns', 'rules: [{from: [{source: {namespaces: ["team-*"], notNamespaces: [team-blocked]}}]}]'),
    )
    expect(decide(set, { peer: peer('cluster.local/ns/team-a/sa/x') })).toBe('allow')
    expect(decide(set, { peer: peer('cluster.local/ns/team-blocked/sa/x') })).toBe('none')
    expect(decide(set, { peer: peer('cluster.local/ns/default/sa/x') })).toBe('none')
  })

  it('requestPrincipals split at the last / into issuer and subject, as pilot does; no token never matches', () => {
    const set = policies(
      policy(
        'jwt',
        `rules:
- from: [{source: {requestPrincipals: ["https://issuer.example.com/alice"]}}]
- from: [{source: {requestPrincipals: ["https://other.example.com/*"]}}]
- from: [{source: {requestPrincipals: ["*@example.com"]}}]`,
      ),
    )
    expect(decide(set, { requestPrincipal: jwt('https://issuer.example.com', 'alice') })).toBe('allow')
    expect(decide(set, { requestPrincipal: jwt('https://issuer.example.com', 'bob') })).toBe('none')
    expect(decide(set, { requestPrincipal: jwt('https://other.example.com', 'anyone') })).toBe('allow')
    expect(decide(set, { requestPrincipal: jwt('https://x', 'carol@example.com') })).toBe('allow')
    expect(decide(set, {})).toBe('none')
    const any = policies(policy('any-jwt', 'rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]'))
    expect(decide(any, { requestPrincipal: jwt('i', 's') })).toBe('allow')
    expect(decide(any, {})).toBe('none')
    const notAny = policies(
      policy('need-jwt', 'action: DENY\nrules: [{from: [{source: {notRequestPrincipals: ["*"]}}]}]'),
    )
    expect(decide(notAny, {})).toBe('ns[default]-policy[need-jwt]-rule[0]')
    expect(decide(notAny, { requestPrincipal: jwt('i', 's') })).toBe('allow')
  })

  it('ipBlocks and remoteIpBlocks with addresses and CIDR blocks, and their not forms', () => {
    const set = policies(
      policy(
        'ip',
        'rules: [{from: [{source: {ipBlocks: [10.0.0.0/8, 192.168.1.5], notIpBlocks: [10.9.0.0/16]}}]}]',
      ),
    )
    expect(decide(set, { sourceIp: '10.1.2.3' })).toBe('allow')
    expect(decide(set, { sourceIp: '192.168.1.5' })).toBe('allow')
    expect(decide(set, { sourceIp: '10.9.1.1' })).toBe('none')
    expect(decide(set, { sourceIp: '172.16.0.1' })).toBe('none')
    const remote = policies(
      policy('r', 'action: DENY\nrules: [{from: [{source: {remoteIpBlocks: ["2001:db8::/32"]}}]}]'),
    )
    expect(decide(remote, { remoteIp: '2001:db8::1' })).toBe('ns[default]-policy[r]-rule[0]')
    expect(decide(remote, { remoteIp: '10.0.0.1' })).toBe('allow')
  })

  it('paths: exact, prefix, suffix, * and templates; the not forms', () => {
    const set = policies(
      policy(
        'paths',
        `rules:
- to: [{operation: {paths: [/exact, "/prefix/*", "*.png", "/items/{*}/detail", "/files/{**}"], notPaths: [/prefix/secret]}}]`,
      ),
    )
    for (const path of ['/exact', '/prefix/a', '/img/x.png', '/items/42/detail', '/files/a/b/c'])
      expect(decide(set, { path }), path).toBe('allow')
    for (const path of ['/exact/', '/prefix', '/prefix/secret', '/items/4/2/detail', '/other'])
      expect(decide(set, { path }), path).toBe('none')
    expect(
      decide(policies(policy('any', 'rules: [{to: [{operation: {paths: ["*"]}}]}]')), { path: '/' }),
    ).toBe('allow')
  })

  it('methods, hosts (case-insensitive), ports, and their not forms', () => {
    const set = policies(
      policy(
        'op',
        `rules:
- to: [{operation: {methods: [GET, HEAD], hosts: ["*.example.com"], ports: ["9080"], notPorts: ["9081"]}}]
- to: [{operation: {notMethods: [DELETE], notHosts: [blocked.example.com], ports: ["9090"]}}]`,
      ),
    )
    expect(decide(set, { method: 'GET', host: 'API.Example.com' })).toBe('allow')
    expect(decide(set, { method: 'POST', host: 'api.example.com' })).toBe('none')
    expect(decide(set, { method: 'GET', host: 'example.org' })).toBe('none')
    expect(decide(set, { method: 'GET', host: 'api.example.com', port: 9081 })).toBe('none')
    expect(decide(set, { method: 'POST', host: 'x', port: 9090 })).toBe('allow')
    expect(decide(set, { method: 'DELETE', host: 'x', port: 9090 })).toBe('none')
    expect(decide(set, { method: 'POST', host: 'blocked.example.com', port: 9090 })).toBe('none')
  })

  it('from and to entries are alternatives; fields within one entry must all match', () => {
    const set = policies(
      policy(
        'alt',
        `rules:
- from: [{source: {ipBlocks: [10.0.0.1]}}, {source: {ipBlocks: [10.0.0.2]}}]
  to: [{operation: {methods: [GET], paths: [/a]}}, {operation: {paths: [/b]}}]`,
      ),
    )
    expect(decide(set, { sourceIp: '10.0.0.2', method: 'POST', path: '/b' })).toBe('allow')
    expect(decide(set, { sourceIp: '10.0.0.1', method: 'POST', path: '/a' })).toBe('none')
    expect(decide(set, { sourceIp: '10.0.0.3', path: '/b' })).toBe('none')
  })

  it('when: request.headers, source/remote/destination ip, destination.port, connection.sni, values and notValues', () => {
    const set = policies(
      policy(
        'when',
        `rules:
- when:
  - {key: "request.headers[x-user]", values: ["admin-*"], notValues: [admin-guest]}
  - {key: source.ip, values: [10.0.0.0/8]}
  - {key: remote.ip, notValues: [10.6.6.6]}
  - {key: destination.ip, values: [10.0.0.1]}
  - {key: destination.port, values: ["9080"]}
- when:
  - {key: connection.sni, values: ["*.svc.cluster.local"]}
- when:
  - {key: "request.headers[x-present]", values: ["*"]}`,
      ),
    )
    const ok = { headers: { 'x-user': 'admin-alice' } }
    expect(decide(set, ok)).toBe('allow')
    expect(decide(set, { headers: { 'x-user': 'admin-guest' } })).toBe('none')
    expect(decide(set, { headers: { 'x-user': 'bob' } })).toBe('none')
    expect(decide(set, { ...ok, sourceIp: '172.16.0.1' })).toBe('none')
    expect(decide(set, { ...ok, remoteIp: '10.6.6.6' })).toBe('none')
    expect(decide(set, { ...ok, destinationIp: '10.0.0.2' })).toBe('none')
    expect(decide(set, { ...ok, port: 9081 })).toBe('none')
    expect(decide(set, { sni: 'outbound_.9080_._.reviews.default.svc.cluster.local' })).toBe('allow')
    expect(decide(set, { headers: { 'x-present': '' } })).toBe('allow')
  })

  it('when: source.principal, source.namespace and request.auth.* (principal, audiences, presenter, nested claims)', () => {
    const set = policies(
      policy(
        'auth',
        `rules:
- when:
  - {key: source.principal, values: ["cluster.local/ns/default/sa/sleep"]}
  - {key: source.namespace, values: [default]}
- when:
  - {key: request.auth.principal, values: ["https://issuer/alice"]}
  - {key: request.auth.audiences, values: [bookinfo]}
  - {key: request.auth.presenter, values: ["web-*"]}
- when:
  - {key: "request.auth.claims[groups]", values: [admins]}
- when:
  - {key: "request.auth.claims[realm][role]", values: [owner]}`,
      ),
    )
    expect(decide(set, { peer: peer('cluster.local/ns/default/sa/sleep') })).toBe('allow')
    expect(decide(set, { peer: peer('cluster.local/ns/prod/sa/sleep') })).toBe('none')
    const alice = jwt('https://issuer', 'alice', { aud: ['x', 'bookinfo'], azp: 'web-app' })
    expect(decide(set, { requestPrincipal: alice })).toBe('allow')
    expect(
      decide(set, { requestPrincipal: jwt('https://issuer', 'alice', { aud: 'x', azp: 'web-app' }) }),
    ).toBe('none')
    expect(decide(set, { requestPrincipal: jwt('i', 's', { groups: ['users', 'admins'] }) })).toBe('allow')
    expect(decide(set, { requestPrincipal: jwt('i', 's', { groups: 'admins' }) })).toBe('allow')
    expect(decide(set, { requestPrincipal: jwt('i', 's', { groups: ['users'] }) })).toBe('none')
    expect(decide(set, { requestPrincipal: jwt('i', 's', { realm: { role: 'owner' } }) })).toBe('allow')
    expect(decide(set, { requestPrincipal: jwt('i', 's', { realm: 'owner' }) })).toBe('none')
  })

  it('on TCP an ALLOW rule naming an HTTP-only field never matches; a DENY rule ignores that field (pilot checkError)', () => {
    const set = policies(
      policy(
        'allow-get',
        'rules: [{to: [{operation: {methods: [GET], ports: ["9080"]}}]}, {to: [{operation: {ports: ["3306"]}}]}]',
      ) +
        policy('deny-get', 'action: DENY\nrules: [{to: [{operation: {methods: [GET], ports: ["27017"]}}]}]'),
    )
    // HTTP: the method counts.
    expect(set.http.denial(facts({ method: 'GET', port: 9080 }))).toBeUndefined()
    expect(set.http.denial(facts({ method: 'POST', port: 27017 }))).toBe('none')
    // TCP: rule[0] of allow-get is skipped whole; deny-get denies every connection to 27017.
    expect(set.tcp.denial(facts({ method: '', port: 9080 }))).toBe('none')
    expect(set.tcp.denial(facts({ method: '', port: 3306 }))).toBeUndefined()
    expect(set.tcp.denial(facts({ method: '', port: 27017 }))).toBe('ns[default]-policy[deny-get]-rule[0]')
    // A DENY rule left with no field matches every connection (pilot's generatePermission: permissionAny).
    const pathsOnly = policies(
      policy('deny-admin', 'action: DENY\nrules: [{to: [{operation: {paths: ["/admin"]}}]}]'),
    )
    expect(pathsOnly.tcp.denial(facts({ port: 3306 }))).toBe('ns[default]-policy[deny-admin]-rule[0]')
    expect(pathsOnly.http.denial(facts({ path: '/x' }))).toBeUndefined()
    expect(set.tcp.explain(facts({ port: 9080 })).steps[1]).toMatchObject({
      rule: 'ns[default]-policy[allow-get]-rule[0]',
      mismatch: 'to[0].operation.methods is HTTP only and this is a TCP connection',
    })
  })

  it('explains the decision: every rule, and the first field that did not match', () => {
    const set = policies(
      policy('deny-admin', 'action: DENY\nrules: [{to: [{operation: {paths: ["/admin*"]}}]}]') +
        policy(
          'allow-sleep',
          'rules: [{from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}], to: [{operation: {methods: [GET]}}]}]',
        ),
    )
    const explained = set.http.explain(
      facts({ path: '/api', method: 'GET', peer: peer('cluster.local/ns/default/sa/other') }),
    )
    expect(explained).toMatchObject({
      allowed: false,
      decidedBy: 'none',
      details: 'rbac_access_denied_matched_policy[none]',
    })
    expect(explained.steps.map((s) => [s.rule, s.matched, s.mismatch])).toEqual([
      [
        'ns[default]-policy[deny-admin]-rule[0]',
        false,
        'to[0].operation.paths ["/admin*"] did not match "/api"',
      ],
      [
        'ns[default]-policy[allow-sleep]-rule[0]',
        false,
        'from[0].source.principals ["cluster.local/ns/default/sa/sleep"] did not match "cluster.local/ns/default/sa/other"',
      ],
    ])
  })

  it('warns about targetRefs (the policy then does not apply) and Envoy filter metadata keys', () => {
    const warnings: string[] = []
    const parsed = parseResources(
      policy(
        'waypoint',
        'targetRefs: [{kind: Service, group: "", name: reviews}]\naction: DENY\nrules: [{}]',
      ) +
        policy(
          'meta',
          'action: DENY\nrules: [{when: [{key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"]}]}]',
        ),
      'p.yaml',
      'default',
    )
    const out: Parameters<typeof compileAuthorization>[3] = []
    const set = compileAuthorization(parsed.resources, node, 'istio-system', out)
    warnings.push(...out.map(formatMessage))
    expect(warnings).toEqual([
      expect.stringMatching(
        /^p\.yaml:6: warning: AuthorizationPolicy default\/waypoint: targetRefs is not supported/,
      ),
      expect.stringMatching(
        /^p\.yaml:15: warning: AuthorizationPolicy default\/meta: condition key 'experimental\.envoy\.filters\.network\.mysql_proxy\[db\.table\]' \(Envoy filter metadata\) is not supported/,
      ),
    ])
    // The DENY rule ignores the key it cannot evaluate: it denies everything (a wider deny, as Istio).
    expect(set?.http.denial(facts())).toBe('ns[default]-policy[meta]-rule[0]')
  })
})
