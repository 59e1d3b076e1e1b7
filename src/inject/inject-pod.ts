// Injects one pod template in place: the capture init container, the native sidecar, its volumes, the probe rewrite and Istio's pod labels and annotations.

import { appContainers, dumpAppProbers, rewriteProbes, shouldRewriteProbes } from './app-probers.ts'
import { interceptionMode } from './capture-args.ts'
import { STATUS_ANNOTATION, skipReason } from './injection-policy.ts'
import {
  type ManifestObject,
  ManifestShapeError,
  objectAt,
  objectListAt,
  stringAt,
  stringMapAt,
} from './manifest-values.ts'
import type { PodTemplate } from './pod-templates.ts'
import {
  captureInitContainer,
  HEALTH_PORT,
  INIT_CONTAINER,
  PROXY_CONTAINER,
  proxyContainer,
  proxyVolumes,
  type SidecarInputs,
} from './sidecar-template.ts'

export interface InjectOptions {
  /** The Outrigger image both added containers run (the pod's `sidecar.istio.io/proxyImage` wins). */
  readonly image: string
}

export type PodOutcome = { readonly injected: true } | { readonly injected: false; readonly reason: string }

/** Injects `template` (its mappings are edited) unless Istio's policy skips it; says which. */
export function injectPod(template: PodTemplate, options: InjectOptions): PodOutcome {
  const { pod, spec, path } = template
  const metadataPath = [...path, 'metadata']
  const specPath = [...path, 'spec']
  const metadata = objectAt(pod, 'metadata', path) ?? {}
  const labels = stringMapAt(metadata, 'labels', metadataPath)
  const annotations = stringMapAt(metadata, 'annotations', metadataPath)
  const reason = skipReason({
    labels,
    annotations,
    hostNetwork: spec.hostNetwork === true,
    namespace: stringAt(metadata, 'namespace', metadataPath) ?? template.owner.namespace,
  })
  if (reason !== undefined) return { injected: false, reason }

  let mode: ReturnType<typeof interceptionMode>
  try {
    mode = interceptionMode(annotations)
  } catch (error) {
    throw new ManifestShapeError([...metadataPath, 'annotations'], (error as Error).message)
  }
  const containers = objectListAt(spec, 'containers', specPath)
  const initContainers = objectListAt(spec, 'initContainers', specPath)
  for (const [key, list] of [
    ['containers', containers],
    ['initContainers', initContainers],
  ] as const) {
    list.forEach((container, index) => {
      if (container.name === PROXY_CONTAINER || container.name === INIT_CONTAINER)
        throw new ManifestShapeError(
          [...specPath, key, index, 'name'],
          `'${container.name}' is the name of a container inject adds`,
        )
    })
  }
  const volumes = objectListAt(spec, 'volumes', specPath)

  const probed = appContainers(spec, specPath, PROXY_CONTAINER)
  const rewrite = shouldRewriteProbes(annotations)
  const appProbers = rewrite
    ? dumpAppProbers(
        probed.map(({ container }) => container),
        HEALTH_PORT,
      )
    : undefined
  if (rewrite)
    for (const { container, path: containerPath } of probed)
      rewriteProbes(container, containerPath, HEALTH_PORT)

  const inputs: SidecarInputs = {
    image: options.image,
    owner: template.owner,
    labels,
    annotations,
    mode,
    serviceAccount: stringAt(spec, 'serviceAccountName', specPath) ?? 'default',
    appContainers: containers,
    appProbers,
  }
  const added =
    mode === 'NONE' ? [proxyContainer(inputs)] : [captureInitContainer(inputs, mode), proxyContainer(inputs)]
  const addedVolumes = proxyVolumes(inputs)
  spec.initContainers = [...added, ...initContainers]
  spec.volumes = [...volumes, ...addedVolumes]

  pod.metadata = metadata
  metadata.labels = { ...labels, ...istioLabels(labels, template.owner.name) }
  const firstApp = containers[0]?.name
  const merged: Record<string, string> = { ...annotations }
  if (typeof firstApp === 'string') {
    merged['kubectl.kubernetes.io/default-logs-container'] ??= firstApp
    merged['kubectl.kubernetes.io/default-container'] ??= firstApp
  }
  merged[STATUS_ANNOTATION] = injectionStatus(added, addedVolumes)
  metadata.annotations = merged
  return { injected: true }
}

/** The template's labels (metadata.labels in injection-template.yaml), each kept when the pod sets it. */
function istioLabels(labels: Readonly<Record<string, string>>, workload: string): Record<string, string> {
  const canonicalName =
    labels['service.istio.io/canonical-name'] ?? labels['app.kubernetes.io/name'] ?? labels.app ?? workload
  return {
    'security.istio.io/tlsMode': labels['security.istio.io/tlsMode'] ?? 'istio',
    'service.istio.io/canonical-name': canonicalName.slice(0, 63).replace(/^[-_.]+|[-_.]+$/g, ''),
    'service.istio.io/canonical-revision':
      labels['service.istio.io/canonical-revision'] ??
      labels['app.kubernetes.io/version'] ??
      labels.version ??
      'latest',
  }
}

/** Istio's getInjectionStatus over what was added (Go's JSON: an empty list is null). */
function injectionStatus(
  initContainers: readonly ManifestObject[],
  volumes: readonly ManifestObject[],
): string {
  const names = (list: readonly ManifestObject[]) =>
    list.length === 0 ? null : list.map((item) => String(item.name))
  return JSON.stringify({
    initContainers: names(initContainers),
    containers: null,
    volumes: names(volumes),
    imagePullSecrets: null,
    revision: 'default',
  })
}
