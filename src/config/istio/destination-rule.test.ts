import { describe, expect, it } from 'vitest'
import { formatMessage } from '../messages.ts'
import { parseResources } from '../parse-resources.ts'
import type { DestinationRuleResource } from '../resource.ts'

/** Lines 1–5; the spec's first line is line 6. */
const HEADER =
  'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: reviews\nspec:\n'

function load(spec: string) {
  const parsed = parseResources(HEADER + spec, 'dr.yaml', 'default')
  return {
    resources: parsed.resources as DestinationRuleResource[],
    messages: parsed.messages.map(formatMessage),
  }
}

describe('DestinationRule', () => {
  it('reads subsets with their labels', () => {
    const { resources, messages } = load(`  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
`)
    expect(messages).toEqual([])
    expect(resources[0].spec).toEqual({
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: {} },
      ],
      exportTo: [],
    })
  })

  it('accepts traffic policies and warns about each field in them', () => {
    const { resources, messages } = load(`  host: reviews
  trafficPolicy:
    loadBalancer: {simple: LEAST_REQUEST}
    connectionPool:
      tcp: {maxConnections: 10}
  subsets:
  - name: v1
    trafficPolicy:
      outlierDetection: {consecutive5xxErrors: 3}
  workloadSelector:
    matchLabels: {app: a}
`)
    expect(messages).toEqual([
      "dr.yaml:8: warning: field 'spec.trafficPolicy.loadBalancer' is not supported yet and is ignored",
      "dr.yaml:9: warning: field 'spec.trafficPolicy.connectionPool' is not supported yet and is ignored",
      "dr.yaml:14: warning: field 'spec.subsets[0].trafficPolicy.outlierDetection' is not supported yet and is ignored",
      "dr.yaml:15: warning: field 'spec.workloadSelector' is not supported yet and is ignored",
    ])
    expect(resources[0].spec).toEqual({
      host: 'reviews',
      trafficPolicy: {},
      subsets: [{ name: 'v1', labels: {}, trafficPolicy: {} }],
      exportTo: [],
    })
  })

  it('rejects unknown fields inside a traffic policy', () => {
    expect(load('  host: reviews\n  trafficPolicy:\n    loadBalancing: {}\n').messages).toEqual([
      "dr.yaml:8: unknown field 'spec.trafficPolicy.loadBalancing'",
    ])
  })

  it('requires a host', () => {
    expect(load('  subsets: []\n').messages).toEqual(["dr.yaml:5: missing required field 'spec.host'"])
  })

  it('requires valid subset names', () => {
    const { messages } = load(`  host: reviews
  subsets:
  - name: v_2
  - labels: {version: v3}
`)
    expect(messages).toEqual([
      "dr.yaml:8: field 'spec.subsets[0].name': subset name is invalid: 'v_2'",
      "dr.yaml:9: missing required field 'spec.subsets[1].name'",
    ])
  })

  it('requires unique subset names', () => {
    expect(load('  host: reviews\n  subsets:\n  - name: v1\n  - name: v1\n').messages).toEqual([
      "dr.yaml:9: field 'spec.subsets[1].name': duplicate subset names: v1",
    ])
  })

  it('rejects labels that are not strings', () => {
    expect(load('  host: reviews\n  subsets:\n  - name: v1\n    labels: {version: 1}\n').messages).toEqual([
      "dr.yaml:9: field 'spec.subsets[0].labels.version': expected a string, got number 1",
    ])
  })
})
