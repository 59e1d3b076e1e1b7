// Whether a pod gets the sidecar, as istioctl kube-inject decides (istio pkg/kube/inject/inject.go: IntoObject, injectRequired).

/** Istio's annotation on an injected pod (annotation.SidecarStatus): its presence means "already injected". */
export const STATUS_ANNOTATION = 'sidecar.istio.io/status'
/** The per-pod switch, as a label (preferred when both are set) or an annotation. */
export const INJECT_KEY = 'sidecar.istio.io/inject'

/** Namespaces Istio never injects (IgnoredNamespaces: Kubernetes' own system namespaces). */
const ignoredNamespaces = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage'])

export interface PodFacts {
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
  readonly hostNetwork: boolean
  readonly namespace: string | undefined
}

/** Why a pod is left as it is, or undefined when it is to be injected. */
export function skipReason(pod: PodFacts): string | undefined {
  if (STATUS_ANNOTATION in pod.annotations) return 'is already injected'
  // Istio: iptables rules in a host-network pod would change the node's own routing.
  if (pod.hostNetwork) return 'has host networking enabled'
  if (pod.namespace !== undefined && ignoredNamespaces.has(pod.namespace))
    return `is in the system namespace ${pod.namespace}`
  // kube-inject runs with the injection policy "enabled": only an explicit "false" opts out; any other
  // value than "true" or "false" falls back to the default (Istio logs it as invalid).
  const selector = pod.labels[INJECT_KEY] ?? pod.annotations[INJECT_KEY]
  if (selector === 'false') return 'has sidecar injection disabled'
  return undefined
}
