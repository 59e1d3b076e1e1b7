// Static validation of Kubernetes manifests against the API schemas (kubernetes-models), since no cluster exists here.

import { DaemonSet, Deployment, ReplicaSet, StatefulSet } from 'kubernetes-models/apps/v1'
import { CronJob, Job } from 'kubernetes-models/batch/v1'
import { ConfigMap, Pod, ReplicationController, Secret, Service, ServiceAccount } from 'kubernetes-models/v1'

interface Validatable {
  validate(): void
}

const models: Record<string, new (data: never) => Validatable> = {
  'v1/Pod': Pod,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/ReplicationController': ReplicationController,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/ReplicaSet': ReplicaSet,
  'batch/v1/Job': Job,
  'batch/v1/CronJob': CronJob,
}

/** Throws unless `manifest` is valid for its apiVersion and kind (a List: each item); an unknown kind is an error too. */
export function validateManifest(manifest: unknown): void {
  const { apiVersion, kind, items } = manifest as { apiVersion?: string; kind?: string; items?: unknown[] }
  if (apiVersion === 'v1' && kind === 'List') {
    for (const item of items ?? []) validateManifest(item)
    return
  }
  const Model = models[`${apiVersion}/${kind}`]
  if (Model === undefined) throw new Error(`no schema here for ${apiVersion} ${kind}`)
  new Model(manifest as never).validate()
}
