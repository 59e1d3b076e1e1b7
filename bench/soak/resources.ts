// The Istio resources of the soak: two-endpoint services for each protocol, their retry and outlier policy, and the reloaded VirtualServices.

/** Where each endpoint process listens, one port per protocol. */
export interface EndpointPorts {
  readonly name: string
  readonly h1: number
  readonly h2: number
  readonly grpc: number
  readonly tcp: number
}

/** The proxy's two egress listeners: HTTP (h1, h2c, gRPC and WebSocket, routed by Host) and TCP. */
export interface ListenerPorts {
  readonly http: number
  readonly tcp: number
}

/** The HTTP services and which endpoint port serves each (WebSocket shares the HTTP/1.1 server). */
export const HTTP_SERVICES = [
  { host: 'soak-h1', protocol: 'HTTP', port: 'h1' },
  { host: 'soak-ws', protocol: 'HTTP', port: 'h1' },
  { host: 'soak-h2', protocol: 'HTTP2', port: 'h2' },
  { host: 'soak-grpc', protocol: 'GRPC', port: 'grpc' },
] as const

export const TCP_SERVICE = 'soak-tcp'

/** The response header each reload rewrites; a response carrying the new value proves the traffic saw the new Model. */
export const GENERATION_HEADER = 'x-soak-generation'

function serviceEntry(
  host: string,
  protocol: string,
  listenerPort: number,
  targetPorts: readonly number[],
): string {
  const portName = protocol.toLowerCase()
  const endpoints = targetPorts.map((p) => `{address: 127.0.0.1, ports: {${portName}: ${p}}}`).join(', ')
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${host}, namespace: default}
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${listenerPort}, name: ${portName}, protocol: ${protocol}}]
  endpoints: [${endpoints}]
`
}

/**
 * Outlier detection that ejects a dead endpoint after its second consecutive failure (connect failures and
 * resets count as 5xx, as Envoy's with split_external_local_origin_errors off), for 5 s at first; the
 * ejection lets the other endpoint take all traffic until the killed one is back.
 */
function destinationRule(host: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host}, namespace: default}
spec:
  host: ${host}
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 50}
`
}

/**
 * One VirtualService per HTTP service: retries on every failure that leaves an idempotent request unanswered
 * (connect failure, reset, refused stream, 503, gRPC UNAVAILABLE), three retries of 2 s each, each to an
 * endpoint not tried yet (Istio's default previous_hosts predicate), and the generation header that reloads flip.
 */
function virtualService(host: string, generation: number): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${host}, namespace: default}
spec:
  hosts: [${host}]
  http:
    - timeout: 10s
      retries: {attempts: 3, perTryTimeout: 2s, retryOn: "connect-failure,refused-stream,reset,503,unavailable,cancelled"}
      headers:
        response:
          set: {${GENERATION_HEADER}: "${generation}"}
      route:
        - destination: {host: ${host}}
`
}

/** The resources that do not change during the run (file name → YAML). */
export function staticResources(
  listeners: ListenerPorts,
  endpoints: readonly EndpointPorts[],
): Record<string, string> {
  const documents = [
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
    - port: {number: ${listeners.http}, protocol: HTTP, name: http}
      bind: 127.0.0.1
      hosts: ["./*"]
    - port: {number: ${listeners.tcp}, protocol: TCP, name: tcp}
      bind: 127.0.0.1
      hosts: ["./*"]
`,
    ...HTTP_SERVICES.flatMap((s) => [
      serviceEntry(
        s.host,
        s.protocol,
        listeners.http,
        endpoints.map((e) => e[s.port]),
      ),
      destinationRule(s.host),
    ]),
    serviceEntry(
      TCP_SERVICE,
      'TCP',
      listeners.tcp,
      endpoints.map((e) => e.tcp),
    ),
    destinationRule(TCP_SERVICE),
  ]
  return { 'services.yaml': documents.join('---\n') }
}

/** The file each reload rewrites, and its text for `generation`. */
export const RELOADED_FILE = 'virtual-services.yaml'

export function reloadedResources(generation: number): string {
  return HTTP_SERVICES.map((s) => virtualService(s.host, generation)).join('---\n')
}
