// What one mesh workload tells another about itself (Istio's peer metadata): the source of the source_* and destination_* metric labels.

/**
 * A workload as Istio's stats plugin labels it (istio/proxy source/extensions/common/metadata_object.h,
 * WorkloadMetadataObject). Every field is a plain string; Istio's label value for a field nobody knows
 * is `unknown` (see `labelValue`).
 */
export interface WorkloadMetadata {
  /** The workload name (Kubernetes: the Deployment's name); Istio's `*_workload` label. */
  readonly workloadName: string
  readonly namespace: string
  /** `service.istio.io/canonical-name`, else the `app` label, else the workload name. */
  readonly canonicalService: string
  /** `service.istio.io/canonical-revision`, else the `version` label, else `latest`. */
  readonly canonicalRevision: string
  /** The `app` label, or ''. */
  readonly app: string
  /** The `version` label, or ''. */
  readonly version: string
  /** The cluster id (Istio's `CLUSTER_ID`, `Kubernetes` by default). */
  readonly clusterId: string
  readonly serviceAccount: string
}

/** Who this proxy is, as the bootstrap's `node` block says. */
export interface NodeDescription {
  readonly workload: string
  readonly namespace: string
  readonly serviceAccount: string
  readonly cluster: string
  readonly labels: Readonly<Record<string, string>>
}

/** This proxy's own metadata, with Istio's canonical-service defaults (pkg/model/labels, GetCanonicalServiceName). */
export function localWorkloadMetadata(node: NodeDescription): WorkloadMetadata {
  const labels = node.labels
  const app = labels.app ?? labels['app.kubernetes.io/name'] ?? ''
  const version = labels.version ?? labels['app.kubernetes.io/version'] ?? ''
  return {
    workloadName: node.workload,
    namespace: node.namespace,
    canonicalService: labels['service.istio.io/canonical-name'] ?? (app || node.workload),
    canonicalRevision: labels['service.istio.io/canonical-revision'] ?? (version || 'latest'),
    app,
    version,
    clusterId: node.cluster,
    serviceAccount: node.serviceAccount,
  }
}

/** Istio's label value for a field: the value, or `unknown` when it is empty or not known. */
export function labelValue(value: string | undefined): string {
  return value === undefined || value === '' ? 'unknown' : value
}
