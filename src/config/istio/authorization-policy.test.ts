import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { AuthorizationPolicyResource } from '../resource.ts'

/** Lines 1–4; the spec's first line is line 5. */
const HEADER = 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p}\nspec:\n'

function load(spec: string) {
  const parsed = parseResources(HEADER + spec, 'authz.yaml', 'default')
  return {
    resources: parsed.resources as AuthorizationPolicyResource[],
    messages: parsed.messages.map(formatMessage),
  }
}

describe('AuthorizationPolicy (istio/api security/v1beta1/authorization_policy.proto)', () => {
  it('reads a policy with defaults: action ALLOW, no rules', () => {
    const { resources, messages } = load('  selector: {matchLabels: {app: reviews}}\n')
    expect(messages).toEqual([])
    expect(resources[0].spec).toEqual({
      selector: { matchLabels: { app: 'reviews' } },
      rules: [],
      action: 'ALLOW',
    })
  })

  it('accepts v1beta1 and rejects the networking group', () => {
    const beta = parseResources(HEADER.replace('/v1', '/v1beta1'), 'authz.yaml', 'default')
    expect(beta.messages).toEqual([])
    const wrong = parseResources(HEADER.replace('security', 'networking'), 'authz.yaml', 'default')
    expect(wrong.messages.map(formatMessage)).toEqual([
      "authz.yaml:1: apiVersion 'networking.istio.io/v1' is not valid for kind AuthorizationPolicy (expected one of security.istio.io/v1, security.istio.io/v1beta1)",
    ])
  })

  it('rejects what Istio rejects, each at its line', () => {
    const { resources, messages } = load(`  action: CUSTOM
  rules:
  - from: []
    to:
    - operation: {}
    - {}
  - to: [{operation: {paths: ["/a*b"], ports: ["http"]}}]
    when:
    - {key: request.method, values: [GET]}
    - {key: "request.headers[x-a]"}
    - {key: request.headers, values: [x]}
    - {key: destination.port, values: ["80a"]}
    - {key: source.ip, notValues: [10.0.0.300]}
  - from: [{source: {ipBlocks: [not-an-ip], principalz: [x]}}]
`)
    expect(resources).toEqual([])
    expect(messages).toEqual([
      "authz.yaml:5: field 'spec.action': a provider must be set when action is CUSTOM",
      "authz.yaml:7: field 'spec.rules[0].from': `from` must not be empty",
      "authz.yaml:9: field 'spec.rules[0].to[0].operation': `to.operation` must not be empty",
      "authz.yaml:10: field 'spec.rules[0].to[1]': `to.operation` must not be nil",
      "authz.yaml:11: field 'spec.rules[1].to[0].operation.ports[0]': invalid port 'http': must be a number in the range 0..65535",
      "authz.yaml:11: field 'spec.rules[1].to[0].operation.paths[0]': '/a*b': a wildcard '*' is allowed only at the start or the end of a value",
      "authz.yaml:13: field 'spec.rules[1].when[0].key': unknown condition key 'request.method' (expected one of request.headers, source.ip, remote.ip, source.namespace, source.principal, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims, destination.ip, destination.port, connection.sni)",
      "authz.yaml:14: field 'spec.rules[1].when[1]': condition 'request.headers[x-a]': at least one of values or notValues must be set",
      "authz.yaml:15: field 'spec.rules[1].when[2].key': condition key 'request.headers' needs a [name]",
      "authz.yaml:16: field 'spec.rules[1].when[3]': condition 'destination.port': invalid port '80a'",
      "authz.yaml:17: field 'spec.rules[1].when[4]': condition 'source.ip': '10.0.0.300' is not a valid IP address or CIDR block",
      "authz.yaml:18: field 'spec.rules[2].from[0].source.ipBlocks[0]': 'not-an-ip' is not a valid IP address or CIDR block",
      "authz.yaml:18: unknown field 'spec.rules[2].from[0].source.principalz'",
    ])
  })

  it('rejects a provider without CUSTOM, and a selector beside targetRefs', () => {
    const { messages } = load(`  action: DENY
  provider: {name: opa}
  selector: {matchLabels: {app: a}}
  targetRefs: [{kind: Service, name: a}]
`)
    expect(messages).toEqual([
      "authz.yaml:4: field 'spec': only one of selector, targetRef or targetRefs can be set",
      "authz.yaml:6: field 'spec.provider': a provider can be set only when action is CUSTOM",
    ])
  })

  it('warns about serviceAccounts by name and keeps the rest of the source', () => {
    const { resources, messages } = load(`  rules:
  - from: [{source: {serviceAccounts: [default/sleep], namespaces: [default]}}]
`)
    expect(messages).toEqual([
      "authz.yaml:6: warning: field 'spec.rules[0].from[0].source.serviceAccounts' is not supported yet and is ignored",
    ])
    expect(resources[0].spec.rules[0].from?.[0].source).toEqual({ namespaces: ['default'] })
  })

  it('accepts path templates and rejects malformed ones', () => {
    expect(load('  rules: [{to: [{operation: {paths: ["/a/{*}/b", "/c/{**}"]}}]}]\n').messages).toEqual([])
    expect(load('  rules: [{to: [{operation: {paths: ["/a/{**}/b"]}}]}]\n').messages).toEqual([
      "authz.yaml:5: field 'spec.rules[0].to[0].operation.paths[0]': path template '/a/{**}/b': '{**}' must be the last segment",
    ])
  })
})
