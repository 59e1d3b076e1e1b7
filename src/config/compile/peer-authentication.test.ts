import { describe, expect, it } from 'vitest'
import type { ConfigMessage } from '../messages.ts'
import type { NodeIdentity } from '../model.ts'
import { parseResources } from '../parse-resources.ts'
import { composePeerAuthentication } from './peer-authentication.ts'

const node: NodeIdentity = {
  workload: 'reviews',
  namespace: 'default',
  serviceAccount: 'reviews',
  labels: { app: 'reviews' },
  cluster: 'Kubernetes',
  trustDomain: 'cluster.local',
  locality: '',
}

function policy(name: string, namespace: string, spec: string): string {
  return `apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${namespace}}\nspec:\n${spec}\n`
}

function compose(...documents: string[]) {
  const parsed = parseResources(documents.join('---\n'), 'pa.yaml', 'default')
  expect(parsed.messages).toEqual([])
  const warnings: ConfigMessage[] = []
  const composed = composePeerAuthentication(parsed.resources, node, 'istio-system', warnings)
  return { composed, warnings: warnings.map((w) => w.message) }
}

// pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication
describe('composePeerAuthentication', () => {
  it("is Istio's PERMISSIVE default without any policy", () => {
    const { composed } = compose()
    expect(composed.modeForPort(80)).toEqual({ mode: 'PERMISSIVE', policy: '' })
    expect(composed.configured).toBe(false)
  })

  it('takes the narrowest scope that sets a mode: workload over namespace over mesh; UNSET inherits', () => {
    const mesh = policy('mesh', 'istio-system', '  mtls: {mode: STRICT}')
    const ns = policy('ns', 'default', '  mtls: {mode: DISABLE}')
    const wl = policy(
      'wl',
      'default',
      '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: PERMISSIVE}',
    )
    const unsetWl = policy(
      'wl',
      'default',
      '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: UNSET}',
    )
    expect(compose(mesh).composed.modeForPort(80)).toEqual({ mode: 'STRICT', policy: 'istio-system/mesh' })
    expect(compose(mesh, ns).composed.modeForPort(80)).toEqual({ mode: 'DISABLE', policy: 'default/ns' })
    expect(compose(mesh, ns, wl).composed.modeForPort(80).mode).toBe('PERMISSIVE')
    expect(compose(mesh, unsetWl).composed.modeForPort(80)).toEqual({
      mode: 'STRICT',
      policy: 'istio-system/mesh',
    })
  })

  it('ignores policies of other namespaces, selectors that do not match, and selectors in the root namespace', () => {
    const other = policy('other', 'prod', '  mtls: {mode: STRICT}')
    const notMine = policy(
      'ratings',
      'default',
      '  selector: {matchLabels: {app: ratings}}\n  mtls: {mode: STRICT}',
    )
    const rootSelector = policy(
      'root',
      'istio-system',
      '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: STRICT}',
    )
    expect(compose(other, notMine, rootSelector).composed.modeForPort(80).mode).toBe('PERMISSIVE')
  })

  it('applies portLevelMtls of the workload policy by port; an UNSET port inherits the workload mode', () => {
    const wl = policy(
      'wl',
      'default',
      '  selector: {matchLabels: {app: reviews}}\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n    9090: {mode: UNSET}',
    )
    const { composed } = compose(wl)
    expect(composed.modeForPort(8080)).toEqual({ mode: 'DISABLE', policy: 'default/wl portLevelMtls 8080' })
    expect(composed.modeForPort(9090).mode).toBe('STRICT')
    expect(composed.modeForPort(80)).toEqual({ mode: 'STRICT', policy: 'default/wl' })
  })

  it('several policies at one level: the first by name wins (no creationTimestamp), the others are warned', () => {
    const b = policy('b-strict', 'default', '  mtls: {mode: STRICT}')
    const a = policy('a-disable', 'default', '  mtls: {mode: DISABLE}')
    const { composed, warnings } = compose(b, a)
    expect(composed.modeForPort(80)).toEqual({ mode: 'DISABLE', policy: 'default/a-disable' })
    expect(warnings).toEqual([
      'PeerAuthentication default/b-strict is ignored: default/a-disable is the namespace-level policy (several at one level: the oldest wins; without creationTimestamp, the first by name)',
    ])
  })
})

describe('PeerAuthentication validation', () => {
  it('refuses portLevelMtls without a selector and ports out of range, naming the line', () => {
    const parsed = parseResources(
      policy('p', 'default', '  mtls: {mode: STRICT}\n  portLevelMtls:\n    0: {mode: DISABLE}'),
      'pa.yaml',
      'default',
    )
    expect(parsed.resources).toEqual([])
    expect(parsed.messages.map((m) => `${m.line}: ${m.message}`)).toEqual([
      "6: field 'spec.portLevelMtls': mesh/namespace peer authentication cannot have port level mTLS",
      `7: field 'spec.portLevelMtls["0"]': port must be in range 1..65535 (got '0')`,
    ])
  })
})
