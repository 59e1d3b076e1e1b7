// Builders of the Istio resources scenario tests give a proxy (ServiceEntry, Sidecar, DestinationRule, ...), as YAML.

import { parse, stringify } from 'yaml'

/** Fields of an Istio resource below the ones a builder names, as istio/api spells them (YAML-shaped values). */
export type Fields = Readonly<Record<string, unknown>>

/** A resource document of networking.istio.io/v1; `undefined` fields are left out. */
function resource(kind: string, name: string, namespace: string | undefined, spec: Fields): string {
  const document = {
    apiVersion: 'networking.istio.io/v1',
    kind,
    metadata: { name, namespace: namespace ?? 'default' },
    spec,
  }
  return stringify(document, { lineWidth: 0 })
}

/** Documents joined into one multi-document YAML stream. */
export function yamlStream(...documents: readonly string[]): string {
  return documents.join('---\n')
}

/** A ServiceEntry port (istio/api networking/v1alpha3/service_entry.proto `ServicePort`). */
export interface ServicePort {
  readonly number: number
  readonly name?: string
  readonly protocol?: string
  readonly targetPort?: number
}

/** A ServiceEntry endpoint (istio/api networking/v1alpha3/workload_entry.proto `WorkloadEntry`). */
export interface WorkloadEndpoint {
  readonly address: string
  /** Port name → the endpoint's port for it. */
  readonly ports?: Readonly<Record<string, number>>
  readonly labels?: Readonly<Record<string, string>>
  readonly locality?: string
  readonly weight?: number
}

/** Loopback endpoints labelled by version, each on its own port: `versionEndpoints('http', {v1: 8001, v2: 8002})`. */
export function versionEndpoints(
  portName: string,
  ports: Readonly<Record<string, number>>,
): WorkloadEndpoint[] {
  return Object.entries(ports).map(([version, port]) => ({
    address: '127.0.0.1',
    ports: { [portName]: port },
    labels: { version },
  }))
}

export interface ServiceEntryOptions {
  readonly name: string
  /** Default `default`. */
  readonly namespace?: string
  /** Default `[name]`. */
  readonly hosts?: readonly string[]
  /** Default `STATIC`. */
  readonly resolution?: 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'NONE'
  readonly ports: readonly ServicePort[]
  /** Default one endpoint at 127.0.0.1 (reached on each port's targetPort); `[]` writes none. */
  readonly endpoints?: readonly WorkloadEndpoint[]
  /** Any other spec fields (subjectAltNames, location, …). */
  readonly spec?: Fields
}

export function serviceEntry(options: ServiceEntryOptions): string {
  const endpoints = options.endpoints ?? [{ address: '127.0.0.1' }]
  return resource('ServiceEntry', options.name, options.namespace, {
    hosts: options.hosts ?? [options.name],
    resolution: options.resolution ?? 'STATIC',
    ports: options.ports,
    endpoints: endpoints.length === 0 ? undefined : endpoints,
    ...options.spec,
  })
}

/** A Sidecar `ingress[]` listener (istio/api networking/v1alpha3/sidecar.proto `IstioIngressListener`). */
export interface IngressListener {
  readonly port: number
  readonly protocol?: string
  readonly name?: string
  readonly bind?: string
  /** `127.0.0.1:<app port>`. */
  readonly defaultEndpoint: string
  /** `tls` (ServerTLSSettings). */
  readonly tls?: Fields
}

/** An ingress listener bound to 127.0.0.1:`port` that forwards to the app on 127.0.0.1:`appPort`. */
export function loopbackIngress(
  port: number,
  appPort: number,
  protocol?: string,
  name?: string,
): IngressListener {
  return { port, protocol, name, bind: '127.0.0.1', defaultEndpoint: `127.0.0.1:${appPort}` }
}

/** A Sidecar `egress[]` listener (`IstioEgressListener`). */
export interface EgressListener {
  readonly port: number
  readonly protocol?: string
  readonly name?: string
  readonly bind?: string
  /** Default `["./*"]`: the services of the proxy's namespace. */
  readonly hosts?: readonly string[]
}

export interface SidecarOptions {
  /** Default `default`. */
  readonly name?: string
  readonly namespace?: string
  /** `workloadSelector.labels`; none selects every workload of the namespace. */
  readonly selector?: Readonly<Record<string, string>>
  readonly ingress?: readonly IngressListener[]
  readonly egress?: readonly EgressListener[]
}

function listenerPort(listener: IngressListener | EgressListener): Fields {
  return { number: listener.port, protocol: listener.protocol, name: listener.name }
}

export function sidecar(options: SidecarOptions): string {
  const ingress = options.ingress?.map((listener) => ({
    port: listenerPort(listener),
    bind: listener.bind,
    defaultEndpoint: listener.defaultEndpoint,
    tls: listener.tls,
  }))
  const egress = options.egress?.map((listener) => ({
    port: listenerPort(listener),
    bind: listener.bind,
    hosts: listener.hosts ?? ['./*'],
  }))
  const workloadSelector = options.selector === undefined ? undefined : { labels: options.selector }
  return resource('Sidecar', options.name ?? 'default', options.namespace, {
    workloadSelector,
    ingress,
    egress,
  })
}

/** A DestinationRule subset. */
export interface Subset {
  readonly name: string
  readonly labels?: Readonly<Record<string, string>>
  readonly trafficPolicy?: Fields
}

/** Subsets named after the `version` label they select: `versionSubsets('v1', 'v2')`. */
export function versionSubsets(...versions: readonly string[]): Subset[] {
  return versions.map((version) => ({ name: version, labels: { version } }))
}

export interface DestinationRuleOptions {
  readonly host: string
  /** Default the host. */
  readonly name?: string
  readonly namespace?: string
  readonly trafficPolicy?: Fields
  readonly subsets?: readonly Subset[]
}

/**
 * A DestinationRule; the older form `destinationRule(name, trafficPolicy)` takes the trafficPolicy as
 * YAML text indented under `trafficPolicy:` by four spaces.
 */
export function destinationRule(options: DestinationRuleOptions): string
export function destinationRule(name: string, trafficPolicy: string): string
export function destinationRule(options: DestinationRuleOptions | string, trafficPolicy?: string): string {
  if (typeof options === 'string') {
    return destinationRule({ host: options, trafficPolicy: yamlFields(trafficPolicy ?? '') })
  }
  return resource('DestinationRule', options.name ?? options.host, options.namespace, {
    host: options.host,
    trafficPolicy: options.trafficPolicy,
    subsets: options.subsets,
  })
}

export interface VirtualServiceOptions {
  readonly hosts: readonly string[]
  /** Default the first host. */
  readonly name?: string
  readonly namespace?: string
  /** `http[]` routes (HTTPRoute). */
  readonly http?: readonly Fields[]
  /** `tcp[]` routes (TCPRoute). */
  readonly tcp?: readonly Fields[]
  /** `tls[]` routes (TLSRoute). */
  readonly tls?: readonly Fields[]
}

export function virtualService(options: VirtualServiceOptions): string {
  const { hosts, http, tcp, tls } = options
  return resource('VirtualService', options.name ?? hosts[0], options.namespace, { hosts, http, tcp, tls })
}

/** A route's `route:` sending everything to one destination: `routeTo('reviews', 'v2')`. */
export function routeTo(host: string, subset?: string): Fields[] {
  return [{ destination: { host, subset } }]
}

/** YAML text of one mapping as fields (for the builders that still take policies as YAML text). */
function yamlFields(yaml: string): Fields {
  return (parse(yaml) ?? {}) as Fields
}

/** A Sidecar with one HTTP egress listener on `port` that sees the services of its namespace. */
export function egressSidecar(port: number): string {
  return sidecar({ egress: [{ port, protocol: 'HTTP', name: 'http' }] })
}

/** A Sidecar with one HTTP ingress listener on 127.0.0.1:`port` forwarding to 127.0.0.1:`appPort`. */
export function ingressSidecar(port: number, appPort: number): string {
  return sidecar({ ingress: [loopbackIngress(port, appPort, 'HTTP', 'http')] })
}

/** A STATIC ServiceEntry `name` (namespace default) with one HTTP port served by 127.0.0.1:`targetPort`. */
export function loopbackService(name: string, port: number, targetPort: number): string {
  return serviceEntry({ name, ports: [{ number: port, name: 'http', protocol: 'HTTP', targetPort }] })
}

/** The ports of a ServiceEntry with one HTTP port 80. */
const httpPort80 = '[{number: 80, name: http, protocol: HTTP}]'

/**
 * A STATIC ServiceEntry `name` (namespace default) whose endpoints are the given WorkloadEntry flow
 * mappings (e.g. `{address: 127.0.0.1, ports: {http: 8080}}`), on `ports` (default: HTTP port 80).
 */
export function staticService(name: string, endpoints: readonly string[], ports = httpPort80): string {
  return serviceEntry({
    name,
    ports: parse(ports) as ServicePort[],
    endpoints: parse(`[${endpoints.join(', ')}]`) as WorkloadEndpoint[],
  })
}

/** staticService() and a destinationRule() for it, as one YAML stream. */
export function serviceWithPolicy(
  name: string,
  endpoints: readonly string[],
  trafficPolicy: string,
  ports = httpPort80,
): string {
  return yamlStream(staticService(name, endpoints, ports), destinationRule(name, trafficPolicy))
}
