import { describe, expect, it } from 'vitest'
import { formatMessage } from './messages.ts'
import { parseResources } from './parse-resources.ts'

function load(text: string) {
  const parsed = parseResources(text, 'r.yaml', 'default')
  return { resources: parsed.resources, messages: parsed.messages.map(formatMessage) }
}

const SERVICE_ENTRY = `apiVersion: networking.istio.io/v1beta1
kind: ServiceEntry
metadata:
  name: ratings
  namespace: shop
  labels: {team: a}
spec:
  hosts: [ratings.example.com]
  ports:
  - {number: 80, name: http}
`

describe('parseResources', () => {
  it('returns each resource with its identity, source line and spec lines', () => {
    const { resources, messages } = load(
      `# comment\n---\n${SERVICE_ENTRY}---\n${SERVICE_ENTRY.replace('  namespace: shop\n', '')}`,
    )
    expect(messages).toEqual([])
    expect(resources.map((r) => [r.kind, r.apiVersion, r.namespace, r.name, r.source])).toEqual([
      ['ServiceEntry', 'networking.istio.io/v1beta1', 'shop', 'ratings', { file: 'r.yaml', line: 3 }],
      ['ServiceEntry', 'networking.istio.io/v1beta1', 'default', 'ratings', { file: 'r.yaml', line: 14 }],
    ])
    expect(resources[0].lineOf([])).toBe(9)
    expect(resources[0].lineOf(['ports', 0, 'name'])).toBe(12)
    expect(resources[0].lineOf(['ports', 0, 'targetPort'])).toBe(12)
    expect(resources[1].lineOf(['hosts', 0])).toBe(20)
  })

  it('skips empty documents', () => {
    expect(load('---\n---\n# nothing\n---\n').resources).toEqual([])
  })

  it('requires apiVersion, kind and metadata.name', () => {
    expect(load('metadata: {name: a}\nspec: {host: a}\n').messages).toEqual([
      "r.yaml:1: missing required field 'apiVersion'",
      "r.yaml:1: missing required field 'kind'",
    ])
    expect(
      load('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nspec: {host: a}\n').messages,
    ).toEqual(["r.yaml:1: missing required field 'metadata'"])
    const noName =
      'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  namespace: a\nspec: {host: a}\n'
    expect(load(noName).messages).toEqual(["r.yaml:3: missing required field 'metadata.name'"])
  })

  it('rejects an apiVersion that does not serve the kind', () => {
    const wrongGroup =
      'apiVersion: security.istio.io/v1\nkind: VirtualService\nmetadata: {name: a}\nspec: {hosts: [a]}\n'
    expect(load(wrongGroup).messages).toEqual([
      "r.yaml:1: apiVersion 'security.istio.io/v1' is not valid for kind VirtualService (expected one of networking.istio.io/v1, networking.istio.io/v1beta1, networking.istio.io/v1alpha3)",
    ])
    expect(
      load('apiVersion: networking.istio.io/v2\nkind: Sidecar\nmetadata: {name: a}\n').messages[0],
    ).toMatch(/^r\.yaml:1: apiVersion 'networking\.istio\.io\/v2' is not valid for kind Sidecar/)
  })

  it('rejects unknown kinds at the kind line', () => {
    expect(load('apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: a}\n').messages).toEqual(
      [
        "r.yaml:2: unknown kind 'Gateway' (expected one of ServiceEntry, VirtualService, DestinationRule, Sidecar, RequestAuthentication, PeerAuthentication, AuthorizationPolicy, Telemetry)",
      ],
    )
  })

  it('reads the security kinds and Telemetry, and checks API groups', () => {
    const { resources, messages } = load(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: mtls}
spec: {}
---
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: {name: mesh-default}
spec:
  tracing: [{randomSamplingPercentage: 10}]
---
apiVersion: networking.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict}
`)
    expect(resources.map((r) => `${r.kind}/${r.name}`)).toEqual([
      'PeerAuthentication/mtls',
      'Telemetry/mesh-default',
    ])
    expect(messages).toEqual([
      "r.yaml:12: apiVersion 'networking.istio.io/v1' is not valid for kind PeerAuthentication (expected one of security.istio.io/v1, security.istio.io/v1beta1)",
    ])
  })

  it('rejects unknown top-level fields and ignores status', () => {
    const { resources, messages } = load(`${SERVICE_ENTRY}status:\n  conditions: []\nspecs: {}\n`)
    expect(messages).toEqual(["r.yaml:13: unknown field 'specs'"])
    expect(resources).toEqual([])
  })

  it('rejects a document that is not a map', () => {
    expect(load('- a\n- b\n').messages).toEqual([
      'r.yaml:1: a document must be a map with apiVersion, kind, metadata and spec',
    ])
  })

  it('treats an empty value as absent, as Kubernetes does', () => {
    const { resources, messages } = load(`${SERVICE_ENTRY}  exportTo:\n  addresses:\n`)
    expect(messages).toEqual([])
    expect(resources[0].kind === 'ServiceEntry' && resources[0].spec.exportTo).toEqual([])
  })

  it('treats a missing spec as empty', () => {
    expect(
      load('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: a}\n').messages,
    ).toEqual(["r.yaml:1: missing required field 'spec.host'"])
  })

  it('keeps the valid documents of a file that has an invalid one', () => {
    const { resources, messages } = load(
      `${SERVICE_ENTRY}---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: x}\nspec:\n  ingress: [{}]\n`,
    )
    expect(resources.map((r) => r.kind)).toEqual(['ServiceEntry'])
    expect(messages).toEqual(["r.yaml:16: missing required field 'spec.ingress[0].port'"])
  })
})
