// Generates Istio YAML for the scale case: N ServiceEntries and N VirtualServices (two routes each) behind one egress listener.

/** The short name of service `i` (a client sends it as the Host header). */
export function serviceName(i: number): string {
  return `svc-${i}`
}

/**
 * Every service has the egress listener's port and one STATIC endpoint, the shared upstream; every
 * VirtualService has a header-and-prefix matched canary route before its default route, so route
 * tables hold 2N routes with matchers to compile.
 */
export function scaleResources(n: number, egressPort: number, upstreamPort: number): Record<string, string> {
  const services: string[] = []
  const routes: string[] = []
  for (let i = 0; i < n; i++) {
    const name = serviceName(i)
    services.push(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${egressPort}, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${upstreamPort}}}]
`)
    routes.push(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}]
  http:
    - name: canary
      match:
        - headers: {x-canary: {exact: "true"}}
          uri: {prefix: /canary/}
      route: [{destination: {host: ${name}}}]
      timeout: 5s
    - name: default
      route: [{destination: {host: ${name}}}]
`)
  }
  return { 'services.yaml': services.join('---\n'), 'virtual-services.yaml': routes.join('---\n') }
}
