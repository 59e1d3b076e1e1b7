// The containers and volumes inject adds to a pod, after Istio's sidecar injection template in its native-sidecar form.

import { goJson } from './app-probers.ts'
import { captureArgs, PROXY_UID } from './capture-args.ts'
import type { ManifestObject, ManifestValue } from './manifest-values.ts'
import type { WorkloadRef } from './pod-templates.ts'

export const PROXY_CONTAINER = 'istio-proxy'
export const INIT_CONTAINER = 'istio-init'
/** The health port: readiness (/healthz/ready) and the rewritten app probes. */
export const HEALTH_PORT = 15021

/** Where the sidecar finds its inputs, each a volume mount. */
export const MOUNTS = {
  bootstrap: '/etc/outrigger/bootstrap',
  resources: '/etc/outrigger/istio',
  certs: '/etc/certs',
  podInfo: '/etc/istio/pod',
} as const
export const BOOTSTRAP_FILE = 'bootstrap.yaml'

/** Annotations naming the pod's ConfigMaps (Outrigger's own: there is no istiod to serve config). */
export const CONFIG_ANNOTATIONS = {
  bootstrap: 'sidecar.outrigger.dev/bootstrap',
  resources: 'sidecar.outrigger.dev/resources',
} as const
export const DEFAULT_RESOURCES_CONFIGMAP = 'outrigger-istio'

/** Istio's per-pod overrides of the proxy image and resources. */
const PROXY_IMAGE_ANNOTATION = 'sidecar.istio.io/proxyImage'
const resourceAnnotations = {
  requests: { cpu: 'sidecar.istio.io/proxyCPU', memory: 'sidecar.istio.io/proxyMemory' },
  limits: { cpu: 'sidecar.istio.io/proxyCPULimit', memory: 'sidecar.istio.io/proxyMemoryLimit' },
} as const

/** Istio's global.proxy.resources defaults. */
const defaultResources: ManifestObject = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '2000m', memory: '1024Mi' },
}

export interface SidecarInputs {
  readonly image: string
  readonly owner: WorkloadRef
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
  readonly mode: 'REDIRECT' | 'TPROXY' | 'NONE'
  readonly serviceAccount: string
  /** The pod's app containers (`spec.containers` but the proxy), for ISTIO_META_APP_CONTAINERS and POD_PORTS. */
  readonly appContainers: readonly ManifestObject[]
  /** ISTIO_KUBE_APP_PROBERS, when any probe was rewritten. */
  readonly appProbers: string | undefined
}

/** The bootstrap ConfigMap a workload reads: the annotation's, else `outrigger-bootstrap-<workload>`. */
export function bootstrapConfigMap(
  owner: WorkloadRef,
  annotations: Readonly<Record<string, string>>,
): string {
  return annotations[CONFIG_ANNOTATIONS.bootstrap] ?? `outrigger-bootstrap-${owner.name}`
}

/** The Secret with the workload certificate: Istio's `istio.<service account>` (global.mountMtlsCerts). */
export function certificateSecret(serviceAccount: string): string {
  return `istio.${serviceAccount}`
}

/** istio-init: capture installed by root with NET_ADMIN and NET_RAW, before any other container runs. */
export function captureInitContainer(inputs: SidecarInputs, mode: 'REDIRECT' | 'TPROXY'): ManifestObject {
  return {
    name: INIT_CONTAINER,
    image: proxyImage(inputs),
    args: captureArgs(inputs.annotations, mode),
    resources: resources(inputs.annotations),
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { add: ['NET_ADMIN', 'NET_RAW'], drop: ['ALL'] },
      readOnlyRootFilesystem: false,
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
  }
}

/**
 * istio-proxy as a native sidecar (an init container with `restartPolicy: Always`, Kubernetes 1.29+):
 * started before the app containers and ready before they start, stopped only after they have exited,
 * so the app's outbound calls during its own shutdown still go through the proxy.
 */
export function proxyContainer(inputs: SidecarInputs): ManifestObject {
  const tproxy = inputs.mode === 'TPROXY'
  const readyProbe = { path: '/healthz/ready', port: HEALTH_PORT }
  return {
    name: PROXY_CONTAINER,
    image: proxyImage(inputs),
    restartPolicy: 'Always',
    ports: [{ containerPort: 15090, protocol: 'TCP', name: 'http-envoy-prom' }],
    args: ['run', '--config', `${MOUNTS.bootstrap}/${BOOTSTRAP_FILE}`],
    env: proxyEnv(inputs),
    startupProbe: {
      httpGet: readyProbe,
      initialDelaySeconds: 0,
      periodSeconds: 1,
      timeoutSeconds: 3,
      failureThreshold: 600,
    },
    readinessProbe: {
      httpGet: readyProbe,
      initialDelaySeconds: 0,
      periodSeconds: 15,
      timeoutSeconds: 3,
      failureThreshold: 4,
    },
    // Istio's: uid and gid 1337 (capture lets that owner's traffic through); TPROXY needs root with
    // NET_ADMIN for IP_TRANSPARENT sockets, and gid 1337 still identifies the proxy's traffic.
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: tproxy ? { add: ['NET_ADMIN'], drop: ['ALL'] } : { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsGroup: PROXY_UID,
      runAsNonRoot: !tproxy,
      runAsUser: tproxy ? 0 : PROXY_UID,
    },
    resources: resources(inputs.annotations),
    volumeMounts: [
      { name: 'outrigger-bootstrap', mountPath: MOUNTS.bootstrap, readOnly: true },
      { name: 'outrigger-istio', mountPath: MOUNTS.resources, readOnly: true },
      { name: 'istio-certs', mountPath: MOUNTS.certs, readOnly: true },
      { name: 'istio-podinfo', mountPath: MOUNTS.podInfo },
    ],
  }
}

/** The volumes the proxy mounts: its bootstrap, the Istio resources, the workload certificate, the pod's labels. */
export function proxyVolumes(inputs: SidecarInputs): ManifestObject[] {
  return [
    {
      name: 'outrigger-bootstrap',
      configMap: { name: bootstrapConfigMap(inputs.owner, inputs.annotations) },
    },
    {
      name: 'outrigger-istio',
      configMap: { name: inputs.annotations[CONFIG_ANNOTATIONS.resources] ?? DEFAULT_RESOURCES_CONFIGMAP },
    },
    // Optional, as Istio mounts it: a pod whose bootstrap has no `tls` needs no certificate.
    { name: 'istio-certs', secret: { secretName: certificateSecret(inputs.serviceAccount), optional: true } },
    {
      name: 'istio-podinfo',
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'annotations', fieldRef: { fieldPath: 'metadata.annotations' } },
        ],
      },
    },
  ]
}

function proxyImage(inputs: SidecarInputs): string {
  return inputs.annotations[PROXY_IMAGE_ANNOTATION] ?? inputs.image
}

/** Istio's "resources" template: the annotations when any is set, else the defaults. */
function resources(annotations: Readonly<Record<string, string>>): ManifestObject {
  const out: ManifestObject = {}
  for (const bound of ['requests', 'limits'] as const) {
    const values: ManifestObject = {}
    for (const resource of ['cpu', 'memory'] as const) {
      const value = annotations[resourceAnnotations[bound][resource]]
      if (value !== undefined) values[resource] = value
    }
    if (Object.keys(values).length > 0) out[bound] = values
  }
  return Object.keys(out).length > 0 ? out : structuredClone(defaultResources)
}

const fieldRef = (name: string, fieldPath: string): ManifestObject => ({
  name,
  valueFrom: { fieldRef: { fieldPath } },
})

/** The proxy's environment, Istio's names: the pod's identity from the downward API, its ports and app probes. */
function proxyEnv(inputs: SidecarInputs): ManifestValue[] {
  const { owner } = inputs
  const ports = inputs.appContainers.flatMap((container) =>
    Array.isArray(container.ports) ? container.ports : [],
  )
  const env: ManifestValue[] = [
    fieldRef('POD_NAME', 'metadata.name'),
    fieldRef('POD_NAMESPACE', 'metadata.namespace'),
    fieldRef('INSTANCE_IP', 'status.podIP'),
    fieldRef('SERVICE_ACCOUNT', 'spec.serviceAccountName'),
    fieldRef('HOST_IP', 'status.hostIP'),
    { name: 'ISTIO_META_POD_PORTS', value: goJson(JSON.stringify(ports)) },
    { name: 'ISTIO_META_APP_CONTAINERS', value: inputs.appContainers.map((c) => String(c.name)).join(',') },
    { name: 'ISTIO_META_CLUSTER_ID', value: 'Kubernetes' },
    fieldRef('ISTIO_META_NODE_NAME', 'spec.nodeName'),
    { name: 'ISTIO_META_INTERCEPTION_MODE', value: inputs.mode },
  ]
  const workloadName = inputs.labels['service.istio.io/workload-name'] ?? owner.name
  if (workloadName !== '') env.push({ name: 'ISTIO_META_WORKLOAD_NAME', value: workloadName })
  if (owner.apiVersion !== '' && owner.name !== '') {
    env.push({
      name: 'ISTIO_META_OWNER',
      value: `kubernetes://apis/${owner.apiVersion}/namespaces/${owner.namespace ?? 'default'}/${owner.kind.toLowerCase()}s/${owner.name}`,
    })
  }
  // Native sidecars get SIGTERM only once every app container has exited: nothing is left to serve
  // then, so the drain ends as soon as the last connection closes (Istio's option of the same name).
  env.push({ name: 'EXIT_ON_ZERO_ACTIVE_CONNECTIONS', value: 'true' })
  if (inputs.appProbers !== undefined) env.push({ name: 'ISTIO_KUBE_APP_PROBERS', value: inputs.appProbers })
  return env
}
