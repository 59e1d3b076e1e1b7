// Composes the PeerAuthentication policies that apply to this workload into one mTLS mode per inbound port, as pilot's ComposePeerAuthentication does.

import type { ConfigMessage } from '../messages.ts'
import type { InboundMtlsModel, NodeIdentity } from '../model.ts'
import type { PeerAuthenticationResource, Resource } from '../resource.ts'

type Mode = InboundMtlsModel['mode']

/** The workload's composed policy: its mode, and the modes its workload-level policy sets per port. */
export interface ComposedPeerAuthentication {
  modeForPort(port: number): InboundMtlsModel
  /** True when some PeerAuthentication applies to this workload (the mode is not only Istio's default). */
  readonly configured: boolean
}

function selectorLabels(r: PeerAuthenticationResource): Readonly<Record<string, string>> {
  return r.spec.selector?.matchLabels ?? {}
}

/**
 * Istio's order among policies of one scope: the oldest wins (creationTimestamp), then the name, then
 * the namespace (pilot's sortConfigByCreationTime). Files carry no creationTimestamp, so every policy
 * counts as created at the same time and the name decides.
 */
function oldest(policies: readonly PeerAuthenticationResource[]): PeerAuthenticationResource | undefined {
  let best: PeerAuthenticationResource | undefined
  for (const p of policies) {
    if (best === undefined || p.name < best.name || (p.name === best.name && p.namespace < best.namespace))
      best = p
  }
  return best
}

function modeOf(r: PeerAuthenticationResource | undefined): Mode | undefined {
  const mode = r?.spec.mtls?.mode
  return mode === undefined || mode === 'UNSET' ? undefined : mode
}

function nameOf(r: PeerAuthenticationResource): string {
  return `${r.namespace}/${r.name}`
}

/**
 * pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication: a policy without a selector in the
 * root namespace is the mesh's, one without a selector in the workload's namespace is the namespace's,
 * one whose selector matches the workload's labels (outside the root namespace) is the workload's. The
 * narrowest scope that sets a mode wins; UNSET inherits; with none, PERMISSIVE. portLevelMtls is read
 * from the workload policy only (validation refuses it elsewhere); an UNSET port inherits.
 */
export function composePeerAuthentication(
  resources: readonly Resource[],
  node: NodeIdentity,
  rootNamespace: string,
  warnings: ConfigMessage[],
): ComposedPeerAuthentication {
  const mesh: PeerAuthenticationResource[] = []
  const namespace: PeerAuthenticationResource[] = []
  const workload: PeerAuthenticationResource[] = []
  for (const r of resources) {
    if (r.kind !== 'PeerAuthentication') continue
    const labels = selectorLabels(r)
    const hasSelector = Object.keys(labels).length > 0
    if (!hasSelector) {
      if (r.namespace === rootNamespace) mesh.push(r)
      else if (r.namespace === node.namespace) namespace.push(r)
    } else if (r.namespace === node.namespace && r.namespace !== rootNamespace) {
      if (Object.entries(labels).every(([k, v]) => node.labels[k] === v)) workload.push(r)
    }
  }
  const chosen = [oldest(mesh), oldest(namespace), oldest(workload)]
  for (const [scope, policies, winner] of [
    ['mesh', mesh, chosen[0]],
    ['namespace', namespace, chosen[1]],
    ['workload', workload, chosen[2]],
  ] as const) {
    for (const p of policies) {
      if (p === winner || winner === undefined) continue
      warnings.push({
        severity: 'warning',
        file: p.source.file,
        line: p.source.line,
        message: `PeerAuthentication ${nameOf(p)} is ignored: ${nameOf(winner)} is the ${scope}-level policy (several at one level: the oldest wins; without creationTimestamp, the first by name)`,
      })
    }
  }
  let mode: Mode = 'PERMISSIVE'
  let policy = ''
  for (const r of chosen) {
    const m = modeOf(r)
    if (r !== undefined && m !== undefined) {
      mode = m
      policy = nameOf(r)
    }
  }
  const base: InboundMtlsModel = { mode, policy }
  const perPort = new Map<number, InboundMtlsModel>()
  const wl = chosen[2]
  for (const [port, mtls] of Object.entries(wl?.spec.portLevelMtls ?? {})) {
    if (wl === undefined) break
    const m = mtls.mode === 'UNSET' ? mode : mtls.mode
    perPort.set(Number(port), { mode: m, policy: `${nameOf(wl)} portLevelMtls ${port}` })
  }
  return {
    configured: chosen.some((r) => r !== undefined),
    modeForPort: (port) => perPort.get(port) ?? base,
  }
}
