// Istio YAML that many scenario tests share: the Sidecar of a standalone proxy with one listener.

/** A Sidecar with one HTTP egress listener on `port` that sees the services of its namespace. */
export function egressSidecar(port: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
    - port: {number: ${port}, protocol: HTTP, name: http}
      hosts: ["./*"]
`
}

/** A Sidecar with one HTTP ingress listener on 127.0.0.1:`port` forwarding to 127.0.0.1:`appPort`. */
export function ingressSidecar(port: number, appPort: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  ingress:
    - port: {number: ${port}, protocol: HTTP, name: http}
      bind: 127.0.0.1
      defaultEndpoint: 127.0.0.1:${appPort}
`
}

/** A STATIC ServiceEntry `name` (namespace default) with one HTTP port served by 127.0.0.1:`targetPort`. */
export function loopbackService(name: string, port: number, targetPort: number): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}]
  resolution: STATIC
  ports: [{number: ${port}, name: http, protocol: HTTP, targetPort: ${targetPort}}]
  endpoints: [{address: 127.0.0.1}]
`
}

/** The ports of a ServiceEntry with one HTTP port 80. */
const httpPort80 = '[{number: 80, name: http, protocol: HTTP}]'

/**
 * A STATIC ServiceEntry `name` (namespace default) whose endpoints are the given WorkloadEntry flow
 * mappings (e.g. `{address: 127.0.0.1, ports: {http: 8080}}`), on `ports` (default: HTTP port 80).
 */
export function staticService(name: string, endpoints: readonly string[], ports = httpPort80): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}]
  resolution: STATIC
  ports: ${ports}
  endpoints: [${endpoints.join(', ')}]
`
}

/** A DestinationRule for host `name` with `trafficPolicy` (YAML indented under `trafficPolicy:` by four spaces). */
export function destinationRule(name: string, trafficPolicy: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: default}
spec:
  host: ${name}
  trafficPolicy:
${trafficPolicy}
`
}

/** staticService() and a destinationRule() for it, as one YAML stream. */
export function serviceWithPolicy(
  name: string,
  endpoints: readonly string[],
  trafficPolicy: string,
  ports = httpPort80,
): string {
  return `${staticService(name, endpoints, ports)}---
${destinationRule(name, trafficPolicy)}`
}
