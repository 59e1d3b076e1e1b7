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

/**
 * A STATIC ServiceEntry `name` (namespace default, HTTP port 80) whose endpoints are the given WorkloadEntry
 * flow mappings (e.g. `{address: 127.0.0.1, ports: {http: 8080}}`), and a DestinationRule for it with
 * `trafficPolicy` (YAML indented under `trafficPolicy:` by four spaces).
 */
export function serviceWithPolicy(name: string, endpoints: readonly string[], trafficPolicy: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}]
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [${endpoints.join(', ')}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}, namespace: default}
spec:
  host: ${name}
  trafficPolicy:
${trafficPolicy}
`
}
