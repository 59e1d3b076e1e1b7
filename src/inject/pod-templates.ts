// Where a manifest keeps its pod: the pod itself, a workload's spec.template, a CronJob's job template, or the items of a List.

import {
  isObject,
  listAt,
  type ManifestObject,
  type ManifestPath,
  ManifestShapeError,
  objectAt,
  stringAt,
} from './manifest-values.ts'

/** A pod (or pod template) inside a manifest, with the workload that owns it. */
export interface PodTemplate {
  /** The pod (or template) mapping, whose `metadata` and `spec` injection edits in place. */
  readonly pod: ManifestObject
  /** Its `spec`. */
  readonly spec: ManifestObject
  /** Where the pod mapping is inside the document, for `file:line` messages. */
  readonly path: ManifestPath
  /** The workload as Istio's injector names it (DeploymentMeta and TypeMeta): kind, apiVersion, name, namespace. */
  readonly owner: WorkloadRef
}

export interface WorkloadRef {
  readonly kind: string
  readonly apiVersion: string
  readonly name: string
  readonly namespace: string | undefined
}

/** Kinds whose pod is `spec.template` (istioctl kube-inject handles the same set through reflection). */
const templateKinds = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'ReplicationController',
])

/** The kinds inject edits; every other document is printed as it was. */
export function isInjectableKind(kind: string): boolean {
  return kind === 'Pod' || kind === 'CronJob' || kind === 'List' || templateKinds.has(kind)
}

/**
 * The pod templates of one manifest document (none for a kind inject leaves alone). The mappings are the
 * document's own objects, so editing them edits the document.
 */
export function podTemplatesOf(document: ManifestObject, path: ManifestPath = []): PodTemplate[] {
  const kind = stringAt(document, 'kind', path) ?? ''
  if (kind === 'List') {
    const items = listAt(document, 'items', path) ?? []
    return items.flatMap((item, index) =>
      isObject(item) ? podTemplatesOf(item, [...path, 'items', index]) : [],
    )
  }
  if (!isInjectableKind(kind)) return []
  const apiVersion = stringAt(document, 'apiVersion', path) ?? ''
  const meta = objectAt(document, 'metadata', path) ?? {}
  const owner: WorkloadRef = {
    kind,
    apiVersion,
    name:
      stringAt(meta, 'name', [...path, 'metadata']) ??
      stringAt(meta, 'generateName', [...path, 'metadata']) ??
      '',
    namespace: stringAt(meta, 'namespace', [...path, 'metadata']),
  }
  if (kind === 'Pod') return [podAt(document, path, owner)]
  const spec = required(document, 'spec', path)
  if (kind === 'CronJob') {
    const jobTemplate = required(spec, 'jobTemplate', [...path, 'spec'])
    const jobSpec = required(jobTemplate, 'spec', [...path, 'spec', 'jobTemplate'])
    return [templateAt(jobSpec, [...path, 'spec', 'jobTemplate', 'spec'], owner)]
  }
  return [templateAt(spec, [...path, 'spec'], owner)]
}

function templateAt(spec: ManifestObject, specPath: ManifestPath, owner: WorkloadRef): PodTemplate {
  return podAt(required(spec, 'template', specPath), [...specPath, 'template'], owner)
}

function podAt(pod: ManifestObject, path: ManifestPath, owner: WorkloadRef): PodTemplate {
  objectAt(pod, 'metadata', path)
  return { pod, spec: required(pod, 'spec', path), path, owner }
}

function required(object: ManifestObject, key: string, path: ManifestPath): ManifestObject {
  const value = objectAt(object, key, path)
  if (value === undefined) throw new ManifestShapeError([...path, key], 'is required')
  return value
}
