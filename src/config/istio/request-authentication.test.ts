// RequestAuthentication parsing (istio/api security/v1beta1/request_authentication.proto, Istio's validateJwtRule) and which policies a workload gets.

import { describe, expect, it } from 'vitest'
import { type Bootstrap, bootstrapSchema } from '../../bootstrap/schema.ts'
import { compileRequestAuthentication } from '../compile/request-authentication.ts'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { RequestAuthenticationResource } from '../resource.ts'

function load(yaml: string) {
  const parsed = parseResources(yaml, 'ra.yaml', 'default')
  return {
    resources: parsed.resources as RequestAuthenticationResource[],
    messages: parsed.messages.map(formatMessage),
  }
}

const policy = (name: string, namespace: string, spec: string, apiVersion = 'security.istio.io/v1') => `
apiVersion: ${apiVersion}
kind: RequestAuthentication
metadata: {name: ${name}, namespace: ${namespace}}
spec:
${spec}
---`

function bootstrap(labels: Record<string, string>, over: Record<string, unknown> = {}): Bootstrap {
  return { ...bootstrapSchema.parse({ node: { labels }, ...over }), file: 'bootstrap.yaml' }
}

describe('RequestAuthentication parsing', () => {
  it('reads every JWTRule field with istio/api defaults', () => {
    const { resources, messages } = load(
      policy(
        'jwt',
        'default',
        `  selector: {matchLabels: {app: reviews}}
  jwtRules:
  - issuer: https://issuer.example
    audiences: [reviews]
    jwksUri: https://issuer.example/jwks.json
    fromHeaders: [{name: x-jwt, prefix: 'Token '}]
    fromParams: [tok]
    fromCookies: [session]
    outputPayloadToHeader: x-payload
    forwardOriginalToken: true
    outputClaimToHeaders: [{header: x-group, claim: groups.primary}]
    timeout: 2s
  - issuer: other`,
      ),
    )
    expect(messages).toEqual([])
    expect(resources[0].spec.selector).toEqual({ matchLabels: { app: 'reviews' } })
    expect(resources[0].spec.jwtRules[0]).toMatchObject({
      fromHeaders: [{ name: 'x-jwt', prefix: 'Token ' }],
      forwardOriginalToken: true,
      timeout: '2s',
    })
    expect(resources[0].spec.jwtRules[1]).toEqual({
      issuer: 'other',
      audiences: [],
      fromHeaders: [],
      fromParams: [],
      fromCookies: [],
      forwardOriginalToken: false,
      outputClaimToHeaders: [],
      spaceDelimitedClaims: [],
    })
  })

  it('accepts security.istio.io v1 and v1beta1 and nothing else', () => {
    expect(load(policy('a', 'default', '  jwtRules: []', 'security.istio.io/v1beta1')).messages).toEqual([])
    expect(load(policy('a', 'default', '  jwtRules: []', 'networking.istio.io/v1')).messages).toEqual([
      "ra.yaml:2: apiVersion 'networking.istio.io/v1' is not valid for kind RequestAuthentication (expected one of security.istio.io/v1, security.istio.io/v1beta1)",
    ])
  })

  it("reports Istio's validation errors with file:line", () => {
    const { resources, messages } = load(
      policy(
        'bad',
        'default',
        `  jwtRules:
  - issuer: ''
    audiences: ['']
    jwksUri: ftp://keys.example/jwks
    jwks: '{"nokeys": 1}'
    fromHeaders: [{name: ''}]
    fromParams: ['']
    fromCookies: ['']
    outputClaimToHeaders: [{header: 'bad header', claim: ''}]
    timeout: 0s`,
      ),
    )
    expect(resources).toEqual([])
    expect(messages).toEqual([
      "ra.yaml:7: field 'spec.jwtRules[0].issuer': issuer must be set",
      "ra.yaml:8: field 'spec.jwtRules[0].audiences[0]': audience must be non-empty string",
      "ra.yaml:9: field 'spec.jwtRules[0].jwksUri': jwksUri 'ftp://keys.example/jwks': URI scheme 'ftp' is not supported",
      'ra.yaml:10: field \'spec.jwtRules[0].jwks\': jwks parse error: a JSON Web Key Set needs a "keys" array',
      "ra.yaml:11: field 'spec.jwtRules[0].fromHeaders[0].name': location header name must be set",
      "ra.yaml:12: field 'spec.jwtRules[0].fromParams[0]': location query must be set",
      "ra.yaml:13: field 'spec.jwtRules[0].fromCookies[0]': cookie name must be set",
      "ra.yaml:14: field 'spec.jwtRules[0].outputClaimToHeaders[0].header': outputClaimToHeaders: header name 'bad header' is not a valid header name",
      "ra.yaml:14: field 'spec.jwtRules[0].outputClaimToHeaders[0].claim': outputClaimToHeaders claim must be set",
      "ra.yaml:15: field 'spec.jwtRules[0].timeout': duration '0s' must be at least 1ms",
    ])
  })

  it('warns by name about targetRef, which it does not read', () => {
    const { messages } = load(
      policy('a', 'default', '  targetRef: {kind: Gateway, name: gw}\n  jwtRules: []'),
    )
    expect(messages).toEqual([
      "ra.yaml:6: warning: field 'spec.targetRef' is not supported yet and is ignored",
    ])
  })
})

describe('which RequestAuthentications apply to the workload', () => {
  const all = load(
    [
      policy('root', 'istio-system', '  jwtRules: [{issuer: mesh}]'),
      policy(
        'root-other',
        'istio-system',
        '  selector: {matchLabels: {app: other}}\n  jwtRules: [{issuer: root-other}]',
      ),
      policy('ns', 'default', '  jwtRules: [{issuer: namespace}]'),
      policy(
        'mine',
        'default',
        '  selector: {matchLabels: {app: reviews}}\n  jwtRules: [{issuer: a-workload}]',
      ),
      policy(
        'theirs',
        'default',
        '  selector: {matchLabels: {app: ratings}}\n  jwtRules: [{issuer: ratings}]',
      ),
      policy('elsewhere', 'prod', '  jwtRules: [{issuer: prod}]'),
    ].join('\n'),
  ).resources

  it('merges root-namespace, namespace and selected policies, sorted by issuer (policy_applier.go)', () => {
    const b = bootstrap({ app: 'reviews' })
    const model = compileRequestAuthentication(all, b.node, b.rootNamespace)
    expect(model?.rules.map((r) => r.issuer)).toEqual(['a-workload', 'mesh', 'namespace'])
    expect(model?.rules.map((r) => r.policy)).toEqual(['default/mine', 'istio-system/root', 'default/ns'])
  })

  it('reads the root namespace from the bootstrap', () => {
    const b = bootstrap({ app: 'reviews' }, { rootNamespace: 'prod' })
    const model = compileRequestAuthentication(all, b.node, b.rootNamespace)
    expect(model?.rules.map((r) => r.issuer)).toEqual(['a-workload', 'namespace', 'prod'])
  })

  it('is undefined when no policy applies, so the filter costs nothing', () => {
    const b = bootstrap({ app: 'x' }, { node: { namespace: 'empty', labels: { app: 'x' } } })
    expect(compileRequestAuthentication(all, b.node, b.rootNamespace)?.rules.map((r) => r.issuer)).toEqual([
      'mesh',
    ])
    expect(compileRequestAuthentication([], b.node, b.rootNamespace)).toBeUndefined()
  })

  it("compiles Envoy's default locations, jwks precedence and sanitized audiences", () => {
    const { resources } = load(
      policy(
        'a',
        'default',
        `  jwtRules:
  - issuer: one
    audiences: [https://api.example/]
    jwksUri: https://keys.example/jwks
    jwks: '{"keys": []}'
  - issuer: two
    fromHeaders: [{name: X-Token}]
    outputClaimToHeaders: [{header: X-Team, claim: org.team}]`,
      ),
    )
    const b = bootstrap({ app: 'reviews' })
    const [one, two] = compileRequestAuthentication(resources, b.node, b.rootNamespace)?.rules ?? []
    expect(one.locations).toEqual([
      { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
      { kind: 'param', name: 'access_token' },
    ])
    expect(one.jwks).toEqual({ kind: 'inline', jwks: { keys: [] } })
    expect(one.audiences).toEqual(['api.example'])
    expect(two.locations).toEqual([{ kind: 'header', name: 'x-token', prefix: '' }])
    expect(two.jwks).toEqual({ kind: 'discovery', issuer: 'two', timeoutMs: 5000 })
    expect(two.claimToHeaders).toEqual([{ header: 'x-team', claimPath: ['org', 'team'] }])
  })
})
