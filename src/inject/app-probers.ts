// The app containers' kubelet probes rewritten to the sidecar's health port, and the originals in Istio's ISTIO_KUBE_APP_PROBERS format (istio pkg/kube/inject/app_probe.go).

import {
  isObject,
  type ManifestObject,
  type ManifestPath,
  type ManifestValue,
  objectAt,
  objectListAt,
  stringAt,
} from './manifest-values.ts'

/** The sidecar's env var holding the original probes (istio pilot-agent status.KubeAppProberEnvName). */
export const APP_PROBERS_ENV = 'ISTIO_KUBE_APP_PROBERS'
/** Istio's switch for the rewrite (default on: values.sidecarInjectorWebhook.rewriteAppHTTPProbe). */
export const REWRITE_PROBES_ANNOTATION = 'sidecar.istio.io/rewriteAppHTTPProbers'

/**
 * Istio's FormatProberURL: where the health port serves a container's probes. Istio also moves httpGet
 * and tcpSocket lifecycle hooks to `/app-lifecycle/<container>/prestopz|poststartz`; the health port
 * does not serve those, so inject leaves the hooks as they are (docs/departures-from-envoy.md).
 */
export function proberPaths(container: string) {
  return {
    readinessProbe: `/app-health/${container}/readyz`,
    livenessProbe: `/app-health/${container}/livez`,
    startupProbe: `/app-health/${container}/startupz`,
  } as const
}

const probeKinds = ['readinessProbe', 'livenessProbe', 'startupProbe'] as const

/** Whether the pod's probes are rewritten: the annotation when it parses as a Go bool, else true. */
export function shouldRewriteProbes(annotations: Readonly<Record<string, string>>): boolean {
  const value = annotations[REWRITE_PROBES_ANNOTATION]
  if (value === undefined) return true
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false
  return true
}

/** One original probe, as Istio's Prober marshals it: the action (httpGet | tcpSocket | grpc) and timeoutSeconds. */
type Prober = ManifestObject

/**
 * Istio's DumpAppProbers: the JSON of every app container's readiness, liveness and startup probes
 * by rewritten path, named ports resolved to the container's numbers, or undefined when there is none.
 * A probe already pointing at the health port (re-injection) or naming an unknown port is left out.
 * The JSON is byte for byte what Go's encoding/json makes of Istio's types: map keys sorted, struct
 * fields in declaration order, empty optional fields left out (GRPCAction.service is not optional: null).
 */
export function dumpAppProbers(
  containers: readonly ManifestObject[],
  healthPort: number,
): string | undefined {
  const probers: Record<string, Prober> = {}
  for (const container of containers) {
    const name = typeof container.name === 'string' ? container.name : ''
    const paths = proberPaths(name)
    const namedPorts = new Map<string, number>()
    for (const port of Array.isArray(container.ports) ? container.ports : []) {
      if (
        isObject(port) &&
        typeof port.name === 'string' &&
        port.name !== '' &&
        typeof port.containerPort === 'number'
      )
        namedPorts.set(port.name, port.containerPort)
    }
    for (const kind of probeKinds) {
      const prober = resolvePort(toProber(container[kind]), namedPorts, healthPort)
      if (prober !== undefined) probers[paths[kind]] = prober
    }
  }
  const keys = Object.keys(probers).sort()
  if (keys.length === 0) return undefined
  return goJson(`{${keys.map((key) => `${JSON.stringify(key)}:${JSON.stringify(probers[key])}`).join(',')}}`)
}

/** Go's encoding/json escapes <, >, & and the JavaScript line separators, which JSON.stringify keeps as they are. */
export function goJson(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** Istio's kubeProbeToInternalProber, with each action's fields in Go's order. */
function toProber(probe: ManifestValue | undefined): Prober | undefined {
  if (!isObject(probe)) return undefined
  let prober: Prober | undefined
  if (isObject(probe.httpGet)) prober = { httpGet: httpGetAction(probe.httpGet) }
  else if (isObject(probe.tcpSocket)) prober = { tcpSocket: tcpSocketAction(probe.tcpSocket) }
  else if (isObject(probe.grpc)) prober = { grpc: grpcAction(probe.grpc) }
  if (prober === undefined) return undefined
  const timeout = probe.timeoutSeconds
  if (typeof timeout === 'number' && timeout !== 0) prober.timeoutSeconds = timeout
  return prober
}

function httpGetAction(action: ManifestObject): ManifestObject {
  const out: ManifestObject = {}
  if (typeof action.path === 'string' && action.path !== '') out.path = action.path
  out.port = action.port ?? 0
  if (typeof action.host === 'string' && action.host !== '') out.host = action.host
  if (typeof action.scheme === 'string' && action.scheme !== '') out.scheme = action.scheme
  if (Array.isArray(action.httpHeaders) && action.httpHeaders.length > 0) {
    out.httpHeaders = action.httpHeaders.map((header) =>
      isObject(header) ? { name: header.name ?? '', value: header.value ?? '' } : header,
    )
  }
  return out
}

function tcpSocketAction(action: ManifestObject): ManifestObject {
  const out: ManifestObject = { port: action.port ?? 0 }
  if (typeof action.host === 'string' && action.host !== '') out.host = action.host
  return out
}

function grpcAction(action: ManifestObject): ManifestObject {
  return { port: action.port ?? 0, service: action.service ?? null }
}

/** Istio's updateNamedPort: a named port becomes its number (dropped if unknown); the health port means "already rewritten". */
function resolvePort(
  prober: Prober | undefined,
  namedPorts: ReadonlyMap<string, number>,
  healthPort: number,
): Prober | undefined {
  if (prober === undefined || isObject(prober.grpc)) return prober
  const action = isObject(prober.httpGet)
    ? prober.httpGet
    : isObject(prober.tcpSocket)
      ? prober.tcpSocket
      : undefined
  if (action === undefined) return undefined
  if (typeof action.port === 'string') {
    const number = namedPorts.get(action.port)
    if (number === undefined) return undefined
    action.port = number
  } else if (action.port === healthPort) {
    return undefined
  }
  return prober
}

/**
 * Istio's patchRewriteProbe: each httpGet, tcpSocket or grpc probe of the container becomes an httpGet
 * of its /app-health path on the health port, keeping the probe's timing and an httpGet's host and
 * headers; an HTTPS scheme becomes HTTP (kubelet → HTTP → proxy → HTTPS → app).
 */
export function rewriteProbes(container: ManifestObject, path: ManifestPath, healthPort: number): void {
  const name = stringAt(container, 'name', path) ?? ''
  const paths = proberPaths(name)
  for (const kind of probeKinds) {
    const probe = objectAt(container, kind, path)
    if (probe !== undefined) container[kind] = rewritten(probe, paths[kind], healthPort) ?? probe
  }
}

function rewritten(probe: ManifestObject, url: string, healthPort: number): ManifestObject | undefined {
  const out: ManifestObject = {}
  if (isObject(probe.httpGet)) {
    const scheme = probe.httpGet.scheme === 'HTTPS' ? 'HTTP' : probe.httpGet.scheme
    for (const [key, value] of Object.entries(probe)) {
      out[key] =
        key === 'httpGet'
          ? { ...probe.httpGet, path: url, port: healthPort, ...(scheme === undefined ? {} : { scheme }) }
          : value
    }
    return out
  }
  if (!isObject(probe.tcpSocket) && !isObject(probe.grpc)) return undefined
  for (const [key, value] of Object.entries(probe)) {
    if (key === 'tcpSocket' || key === 'grpc') out.httpGet = { path: url, port: healthPort }
    else out[key] = value
  }
  return out
}

/** The containers whose probes Istio dumps and rewrites: init containers, then containers, but not the proxy. */
export function appContainers(spec: ManifestObject, specPath: ManifestPath, proxyName: string) {
  const of = (key: 'initContainers' | 'containers') =>
    objectListAt(spec, key, specPath)
      .map((container, index) => ({ container, path: [...specPath, key, index] as ManifestPath }))
      .filter(({ container }) => container.name !== proxyName)
  return [...of('initContainers'), ...of('containers')]
}
