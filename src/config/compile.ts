// Resources + bootstrap ──► one immutable Model: listeners with route tables, and clusters.

import type { Bootstrap } from '../bootstrap/schema.ts'
import { HeaderEdits } from '../route/header-edits.ts'
import { defaultInboundRetryPolicy, defaultRetryPolicy } from '../route/retry-policy.ts'
import { Route } from '../route/route.ts'
import { RouteTable, type VirtualHost } from '../route/route-table.ts'
import { compileAuthorization } from './compile/authorization.ts'
import {
  captureClusters,
  INBOUND_PASSTHROUGH_CLUSTER,
  type OutboundTrafficMode,
  virtualInboundListener,
  virtualOutboundListener,
  withAllowAny,
  withUnknownDestinations,
} from './compile/capture-listeners.ts'
import {
  defaultClusterPolicy,
  defaultConnectTimeoutMs,
  inboundClusterName,
  outboundClusters,
  staticEndpoint,
  visibleDestinationRules,
} from './compile/clusters.ts'
import { withDnsNames } from './compile/dns-table.ts'
import { compileHttpRoutes, outboundClusterName, type RouteCompileEnv } from './compile/http-routes.ts'
import { afterTlsTermination, compileIngressTls } from './compile/ingress-tls.ts'
import { composePeerAuthentication } from './compile/peer-authentication.ts'
import { compileRequestAuthentication } from './compile/request-authentication.ts'
import { buildServiceRegistry, isHttpProtocol, type Service } from './compile/service-registry.ts'
import { inboundTransport, outboundTransport } from './compile/tcp-routes.ts'
import { compileTelemetry } from './compile/telemetry.ts'
import { parseDurationMs } from './duration.ts'
import { flat } from './flat-string.ts'
import { HostIndex } from './host-index.ts'
import { addressHosts, hostAliases, hostMatches, isExportedTo, toFqdn } from './hosts.ts'
import { ConfigError, type ConfigMessage } from './messages.ts'
import type {
  ClusterModel,
  DownstreamTlsModel,
  InboundMtlsModel,
  ListenerModel,
  Model,
  NodeIdentity,
} from './model.ts'
import type { Resource, SidecarResource, VirtualServiceResource } from './resource.ts'

export interface CompileInput {
  readonly bootstrap: Bootstrap
  readonly resources: readonly Resource[]
  readonly files: readonly string[]
  /** Warnings from loading, carried into the model. */
  readonly warnings: readonly ConfigMessage[]
  readonly version: number
}

type EgressSpec = NonNullable<SidecarResource['spec']['egress']>[number]

/** Compiles a model, or throws a ConfigError listing every problem with its file and line. */
export function compileModel(input: CompileInput): Model {
  const node: NodeIdentity = input.bootstrap.node
  const errors: ConfigMessage[] = []
  const warnings: ConfigMessage[] = [...input.warnings]
  const { services, dnsTable } = withDnsNames(
    buildServiceRegistry(input.resources, node.namespace, warnings),
    input.bootstrap,
  )
  const rules = visibleDestinationRules(input.resources, node)
  const virtualServices = input.resources.filter(
    (r): r is VirtualServiceResource =>
      r.kind === 'VirtualService' &&
      isExportedTo(r.spec.exportTo, r.namespace, node.namespace) &&
      (r.spec.gateways === undefined || r.spec.gateways.length === 0 || r.spec.gateways.includes('mesh')),
  )
  const authz = compileAuthorization(input.resources, node, input.bootstrap.rootNamespace, warnings)
  const clusters = new Map<string, ClusterModel>()
  // Istio proxies every TCP-based port (UDP passes by without a proxy).
  const tlsContext = {
    hasIdentity: input.bootstrap.tls !== undefined,
    warnings,
    captured: input.bootstrap.capture !== 'none',
  }
  for (const c of outboundClusters(services, rules, (p) => p.protocol !== 'UDP', node, tlsContext))
    clusters.set(c.name, c)

  const listeners: ListenerModel[] = []
  const protocolDetectionTimeoutMs = parseDurationMs(input.bootstrap.protocolDetectionTimeout)
  const taken = new Map<string, string>()
  const reserve = (address: string, port: number, what: string, where: ConfigMessage): boolean => {
    const clash = taken.get(String(port))
    if (clash !== undefined) {
      errors.push({ ...where, message: `port ${port} of ${what} is already used by ${clash}` })
      return false
    }
    taken.set(String(port), `${what} (${address}:${port})`)
    return true
  }
  const b = input.bootstrap.listeners
  const bootstrapRef: ConfigMessage = { severity: 'error', file: input.bootstrap.file, line: 1, message: '' }
  reserve(b.admin.address, b.admin.port, 'the admin listener', bootstrapRef)
  reserve(b.health.address ?? '0.0.0.0', b.health.port, 'the health listener', bootstrapRef)

  const sidecar = selectSidecar(input.resources, node)
  const captured = input.bootstrap.capture !== 'none'
  // Istio's mesh default (meshConfig.outboundTrafficPolicy) is ALLOW_ANY; a Sidecar's own policy overrides it.
  const outboundMode: OutboundTrafficMode = sidecar?.spec.outboundTrafficPolicy?.mode ?? 'ALLOW_ANY'
  const registryOnly = outboundMode === 'REGISTRY_ONLY'
  /** A capture listener takes what the egress listeners of the Sidecar (or its default: every service) leave unserved. */
  const capturedEgress: {
    egress: EgressSpec
    index: number
    here: (path: (string | number)[]) => ConfigMessage
  }[] = []
  if (sidecar === undefined && !captured) {
    warnings.push({
      ...bootstrapRef,
      severity: 'warning',
      message: `no Sidecar resource selects workload ${node.workload} in namespace ${node.namespace}: no traffic listeners`,
    })
  }
  const peerAuthentication = composePeerAuthentication(
    input.resources,
    node,
    input.bootstrap.rootNamespace,
    warnings,
  )
  if (sidecar !== undefined) {
    const here = (path: (string | number)[]): ConfigMessage => ({
      severity: 'error',
      file: sidecar.source.file,
      line: sidecar.lineOf(path),
      message: '',
    })
    if (sidecar.spec.outboundTrafficPolicy?.mode === 'ALLOW_ANY' && !captured) {
      warnings.push({
        ...here(['outboundTrafficPolicy', 'mode']),
        severity: 'warning',
        message:
          'outboundTrafficPolicy ALLOW_ANY passes unknown hosts to their original destination, which needs traffic capture; without it they get 404 NR',
      })
    }
    ;(sidecar.spec.ingress ?? []).forEach((ingress, i) => {
      const port = ingress.port.number
      const address = ingress.bind ?? '0.0.0.0'
      // Under capture the port is the app's: 15006 hands the listener its connections (bind_to_port false).
      if (!captured && !reserve(address, port, `ingress[${i}]`, here(['ingress', i, 'port', 'number'])))
        return
      const target = parseEndpoint(ingress.defaultEndpoint, ingress.port.targetPort ?? port)
      if (typeof target === 'string') {
        errors.push({ ...here(['ingress', i, 'defaultEndpoint']), message: target })
        return
      }
      const declared = (ingress.port.protocol ?? '').toUpperCase()
      const cluster: ClusterModel = {
        name: inboundClusterName(port),
        direction: 'inbound',
        host: '',
        port,
        subset: '',
        // A port that terminates TLS carries what is inside: HTTPS is served as HTTP, TLS as TCP.
        protocol: ingress.tls === undefined ? declared : afterTlsTermination(declared),
        endpoints: [staticEndpoint(target.address, target.port)],
        connectTimeoutMs: defaultConnectTimeoutMs,
        policy: defaultClusterPolicy,
      }
      const transport = inboundTransport(cluster.protocol, port, cluster.name)
      let tls: DownstreamTlsModel | undefined
      if (ingress.tls !== undefined) {
        const compiled = compileIngressTls(
          ingress.tls,
          transport.serve === 'http' ? 'http' : 'tcp',
          sidecar.source.file,
          (field) => here(['ingress', i, 'tls', ...(field === undefined ? [] : [field])]),
        )
        if ('message' in compiled) {
          errors.push(compiled)
          return
        }
        tls = compiled
      }
      const mtls = peerAuthentication.modeForPort(port)
      const mtlsWarning = inboundMtlsWarning(mtls, port, tls !== undefined, input.bootstrap.tls !== undefined)
      if (mtlsWarning !== undefined)
        warnings.push({ ...here(['ingress', i, 'port']), severity: 'warning', message: mtlsWarning })
      clusters.set(cluster.name, cluster)
      listeners.push({
        ...(tls === undefined ? { mtls } : {}),
        name: `${address}_${port}`,
        direction: 'inbound',
        address,
        port,
        protocol: cluster.protocol,
        routeTable: inboundRouteTable(port, cluster.name, cluster.protocol),
        ...transport,
        protocolDetectionTimeoutMs,
        ...(tls === undefined ? {} : { serve: 'tls-terminate' as const, tls }),
        ...(authz === undefined ? {} : { authz }),
        ...(captured ? { bindToPort: false as const } : {}),
      })
    })
    ;(sidecar.spec.egress ?? []).forEach((egress, i) => {
      // Under capture, an egress listener without its own bind address is reached by original destination.
      if (captured && egress.bind === undefined) {
        capturedEgress.push({ egress, index: i, here })
        return
      }
      if (egress.port === undefined) {
        warnings.push({
          ...here(['egress', i]),
          severity: 'warning',
          message: `egress[${i}] has no port: a catch-all egress listener needs traffic capture and is skipped`,
        })
        return
      }
      const port = egress.port.number
      const address = egress.bind ?? '127.0.0.1'
      if (!reserve(address, port, `egress[${i}]`, here(['egress', i, 'port', 'number']))) return
      const visible = visibleServices(services, egress, sidecar.namespace)
      const table = outboundRouteTable(port, visible, virtualServices, {
        node,
        services,
        clusters,
        egress,
        sidecarNs: sidecar.namespace,
      })
      listeners.push({
        name: `${address}_${port}`,
        direction: 'outbound',
        address,
        port,
        protocol: (egress.port.protocol ?? '').toUpperCase(),
        routeTable: registryOnly ? withBlockAll(table) : table,
        ...outboundTransport((egress.port.protocol ?? '').toUpperCase(), port, visible, {
          node,
          services,
          virtualServices,
          warn: (message) =>
            warnings.push({
              ...here(['egress', i, 'port']),
              severity: 'warning',
              message: `egress[${i}] ${message}`,
            }),
        }),
        protocolDetectionTimeoutMs,
      })
    })
  }
  if (captured) {
    // A Sidecar without egress listeners, or no Sidecar: Istio's default egress sees every service.
    if (sidecar === undefined || (sidecar.spec.egress ?? []).length === 0) {
      const here = (): ConfigMessage => ({ ...bootstrapRef, severity: 'warning' })
      capturedEgress.push({ egress: { hosts: ['*/*'] } as EgressSpec, index: -1, here })
    }
    const env = {
      node,
      services,
      virtualServices,
      clusters,
      protocolDetectionTimeoutMs,
      outboundMode,
      warnings,
    }
    listeners.push(...capturedOutboundListeners(capturedEgress, sidecar?.namespace ?? node.namespace, env))
    for (const c of captureClusters()) clusters.set(c.name, c)
    listeners.push(virtualOutboundListener(input.bootstrap, outboundMode))
    listeners.push(
      virtualInboundListener(
        input.bootstrap,
        peerAuthentication.modeForPort(0),
        authz,
        inboundRouteTable(0, INBOUND_PASSTHROUGH_CLUSTER, ''),
        protocolDetectionTimeoutMs,
      ),
    )
  }
  if (errors.length > 0) throw new ConfigError(errors)
  return {
    version: input.version,
    compiledAt: new Date().toISOString(),
    node,
    listeners,
    clusters,
    files: input.files,
    warnings,
    requestAuthentication: compileRequestAuthentication(input.resources, node, input.bootstrap.rootNamespace),
    authz,
    telemetry: compileTelemetry(input.bootstrap, input.resources, warnings),
    dnsTable,
  }
}

interface CapturedEgressEnv extends RouteCompileEnv {
  readonly virtualServices: readonly VirtualServiceResource[]
  readonly clusters: ReadonlyMap<string, ClusterModel>
  readonly protocolDetectionTimeoutMs: number
  readonly outboundMode: OutboundTrafficMode
  readonly warnings: ConfigMessage[]
}

/**
 * The outbound listeners a capture listener hands connections to, as Istio's sidecar outbound listeners
 * (pilot listener.go buildSidecarOutboundListeners), none bound to its port: for each egress listener's
 * port (a catch-all egress: every port of the services it sees, not taken by a port of its own), a
 * `0.0.0.0_<port>` listener routing HTTP by Host and TCP/TLS by the services without addresses, and a
 * `<address>_<port>` listener for each non-HTTP service port with ServiceEntry `addresses` (a VIP or
 * CIDR), which the original destination picks first. What no service takes goes to the passthrough
 * (ALLOW_ANY) or is blocked (REGISTRY_ONLY).
 */
function capturedOutboundListeners(
  scopes: readonly {
    egress: EgressSpec
    index: number
    here: (path: (string | number)[]) => ConfigMessage
  }[],
  sidecarNs: string,
  env: CapturedEgressEnv,
): ListenerModel[] {
  const listeners: ListenerModel[] = []
  const ports = new Set<number>()
  // Egress listeners with a port first: a catch-all one only takes the ports they leave.
  const ordered = [...scopes].sort(
    (a, b) => Number(a.egress.port === undefined) - Number(b.egress.port === undefined),
  )
  for (const { egress, index, here } of ordered) {
    const visible = visibleServices(env.services, egress, sidecarNs)
    const egressPorts =
      egress.port !== undefined
        ? [egress.port.number]
        : [
            ...new Set(
              visible.flatMap((s) => s.ports.filter((p) => p.protocol !== 'UDP').map((p) => p.number)),
            ),
          ]
    for (const port of egressPorts) {
      if (ports.has(port)) continue
      ports.add(port)
      const declared = egress.port === undefined ? '' : (egress.port.protocol ?? '').toUpperCase()
      const onPort = visible.filter((s) => s.ports.some((p) => p.number === port && p.protocol !== 'UDP'))
      const where = index === -1 ? 'the default egress' : `egress[${index}]`
      const warn = (message: string): void => {
        const at = here(index === -1 ? [] : ['egress', index])
        env.warnings.push({ ...at, severity: 'warning', message: `${where} ${message}` })
      }
      const build = (
        name: string,
        address: string,
        services: readonly Service[],
        tcpServices: readonly Service[],
      ): ListenerModel => {
        const table = outboundRouteTable(port, services, env.virtualServices, { ...env, egress, sidecarNs })
        const transport = outboundTransport(declared, port, tcpServices, { ...env, warn })
        return {
          name,
          direction: 'outbound',
          address,
          port,
          protocol: declared,
          routeTable: env.outboundMode === 'REGISTRY_ONLY' ? withBlockAll(table) : withAllowAny(table),
          ...withUnknownDestinations(transport, env.outboundMode),
          protocolDetectionTimeoutMs: env.protocolDetectionTimeoutMs,
          bindToPort: false,
        }
      }
      const withVip = (s: Service): boolean =>
        s.addresses.length > 0 && s.ports.some((p) => p.number === port && !isHttpFamily(p.protocol))
      listeners.push(
        build(
          `0.0.0.0_${port}`,
          '0.0.0.0',
          onPort,
          onPort.filter((s) => !withVip(s)),
        ),
      )
      for (const service of onPort) {
        if (!withVip(service)) continue
        for (const address of service.addresses)
          listeners.push(build(`${address}_${port}`, address, [service], [service]))
      }
    }
  }
  return listeners
}

/** Declared HTTP-family protocols, which Istio routes by Host on the port's shared listener, never by VIP. */
function isHttpFamily(protocol: string): boolean {
  return protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB'
}

/**
 * What an inbound port's PeerAuthentication cannot do here: a Sidecar ingress `tls` terminates TLS itself
 * (Istio applies that only where the mode is DISABLE; here the ingress tls is kept), or no workload
 * certificate (bootstrap `tls`) exists to terminate mTLS with. Istio's default PERMISSIVE without a
 * policy is silent: without a certificate it serves plain text, as before any policy existed.
 */
function inboundMtlsWarning(
  mtls: InboundMtlsModel,
  port: number,
  ingressTls: boolean,
  workloadCertificate: boolean,
): string | undefined {
  if (mtls.mode === 'DISABLE' || mtls.policy === '') return undefined
  if (ingressTls)
    return `port ${port} terminates its own tls (Sidecar ingress tls): PeerAuthentication ${mtls.policy} (${mtls.mode}) is not applied to it`
  if (workloadCertificate) return undefined
  return mtls.mode === 'STRICT'
    ? `PeerAuthentication ${mtls.policy} makes port ${port} STRICT but the bootstrap has no tls (workload certificate): every connection to it is refused`
    : `PeerAuthentication ${mtls.policy} makes port ${port} PERMISSIVE but the bootstrap has no tls (workload certificate): it serves plain text only`
}

/** The Sidecar for this workload: one whose selector matches its labels, else one without a selector. */
function selectSidecar(resources: readonly Resource[], node: NodeIdentity): SidecarResource | undefined {
  let fallback: SidecarResource | undefined
  for (const r of resources) {
    if (r.kind !== 'Sidecar' || r.namespace !== node.namespace) continue
    const selector = r.spec.workloadSelector?.labels
    if (selector === undefined || Object.keys(selector).length === 0) {
      fallback ??= r
      continue
    }
    if (Object.entries(selector).every(([k, v]) => node.labels[k] === v)) return r
  }
  return fallback
}

function parseEndpoint(
  value: string | undefined,
  defaultPort: number,
): { address: string; port: number } | string {
  if (value === undefined) return { address: '127.0.0.1', port: defaultPort }
  if (value.startsWith('unix://'))
    return `defaultEndpoint ${value}: unix domain sockets are not supported yet`
  const colon = value.lastIndexOf(':')
  const port = Number(value.slice(colon + 1))
  let address = value.slice(0, colon).replace(/^\[|\]$/g, '')
  if (colon === -1 || !Number.isInteger(port) || port < 1 || port > 65535) {
    return `defaultEndpoint ${value} is not of the form <ip>:<port>`
  }
  // Istio's 0.0.0.0:<port> means the workload's own address: on this host, loopback.
  if (address === '0.0.0.0' || address === '') address = '127.0.0.1'
  return { address, port }
}

/**
 * Istio's inbound route (route.BuildDefaultHTTPInboundRoute): no timeout, max_stream_duration 0 with
 * grpc_timeout_header_max 0, and the default inbound retry policy except on gRPC ports ("reset-before-request does not work well for gRPC streaming services").
 */
function inboundRouteTable(port: number, clusterName: string, protocol: string): RouteTable {
  const grpc = protocol === 'GRPC' || protocol === 'GRPC-WEB'
  const route = new Route({
    name: 'default',
    action: {
      kind: 'forward',
      destinations: [
        { clusterName, weight: 1, requestHeaders: HeaderEdits.none, responseHeaders: HeaderEdits.none },
      ],
      totalWeight: 1,
    },
    requestHeaders: HeaderEdits.none,
    responseHeaders: HeaderEdits.none,
    timeoutMs: 0,
    retryPolicy: grpc ? undefined : defaultInboundRetryPolicy,
    // grpc-timeout uncapped, no deadline otherwise: "if not configured at all, the grpc-timeout header is
    // not used" (route.go); the router's timeout (0) then never reads it.
    maxStreamDuration: { maxStreamDurationMs: 0, grpcTimeoutHeaderMaxMs: 0 },
  })
  return new RouteTable(`inbound|${port}||`, [
    { name: `inbound|http|${port}`, domains: ['*'], port, routes: [route] },
  ])
}

/** Services an egress listener may reach: its `hosts` (`namespace/dnsName`) select them. */
function visibleServices(
  services: ReadonlyMap<string, Service>,
  egress: EgressSpec,
  sidecarNs: string,
): Service[] {
  const out: Service[] = []
  for (const service of services.values()) {
    if (egressHostsAllow(egress.hosts, service.namespace, service.fqdn, sidecarNs)) out.push(service)
  }
  return out
}

function egressHostsAllow(
  hosts: readonly string[],
  namespace: string,
  fqdn: string,
  sidecarNs: string,
): boolean {
  for (const entry of hosts) {
    const slash = entry.indexOf('/')
    const ns = slash === -1 ? '*' : entry.slice(0, slash)
    const dns = slash === -1 ? entry : entry.slice(slash + 1)
    if (ns === '~') continue
    if (ns !== '*' && (ns === '.' ? sidecarNs : ns) !== namespace) continue
    if (hostMatches(dns.toLowerCase(), fqdn)) return true
  }
  return false
}

interface OutboundTableEnv extends RouteCompileEnv {
  readonly clusters: ReadonlyMap<string, ClusterModel>
  readonly egress: EgressSpec
  readonly sidecarNs: string
}

function outboundRouteTable(
  listenerPort: number,
  visible: readonly Service[],
  virtualServices: readonly VirtualServiceResource[],
  env: OutboundTableEnv,
): RouteTable {
  const { node, services, clusters, egress, sidecarNs } = env
  const byHost = indexVirtualServices(virtualServices)
  // One `namespace/name` string per VirtualService, shared by its virtual hosts (explain names it).
  const names = new Map<VirtualServiceResource, string>()
  const vsName = (vs: VirtualServiceResource): string => {
    const known = names.get(vs)
    if (known !== undefined) return known
    const name = `${vs.namespace}/${vs.name}`
    names.set(vs, name)
    return name
  }
  const hosts: VirtualHost[] = []
  const served = new Set<string>()
  for (const service of visible) {
    const httpPorts = service.ports.filter((p) => isHttpProtocol(p.protocol))
    // A Host without a port means the listener's port, or the service's only HTTP port.
    const barePort =
      httpPorts.find((p) => p.number === listenerPort) ?? (httpPorts.length === 1 ? httpPorts[0] : undefined)
    for (const port of httpPorts) {
      // The service's VIPs too, so a Host of `10.96.0.10:9080` finds it (pilot generateVirtualHostDomains).
      const aliases = hostAliases(service.fqdn, node.namespace).concat(addressHosts(service.addresses))
      const withPort = aliases.map((a) => flat(a, ':', port.number))
      const domains = port === barePort ? withPort.concat(aliases) : withPort
      const vs = byHost.lookup(service.fqdn)
      const routes =
        vs === undefined
          ? [defaultRoute(port.number, service.fqdn, clusters)]
          : compileHttpRoutes(vs, port.number, env)
      hosts.push({
        name: flat(service.fqdn, ':', port.number),
        domains,
        port: port.number,
        routes,
        virtualService: vs === undefined ? undefined : vsName(vs),
      })
      served.add(service.fqdn)
    }
  }
  // VirtualService hosts that are not services (external names) still get a virtual host on this port.
  for (const vs of virtualServices) {
    for (const host of vs.spec.hosts ?? []) {
      const fqdn = toFqdn(host, vs.namespace)
      if (served.has(fqdn) || services.has(fqdn)) continue
      if (!egressHostsAllow(egress.hosts, vs.namespace, fqdn, sidecarNs)) continue
      served.add(fqdn)
      const aliases = hostAliases(fqdn, node.namespace)
      hosts.push({
        name: flat(fqdn, ':', listenerPort),
        domains: aliases.concat(aliases.map((a) => flat(a, ':', listenerPort))),
        port: listenerPort,
        routes: compileHttpRoutes(vs, listenerPort, env),
        virtualService: vsName(vs),
      })
    }
  }
  return new RouteTable(String(listenerPort), hosts)
}

/** VirtualServices by host: an exact host first, then the longest wildcard; the first one loaded wins. */
function indexVirtualServices(
  virtualServices: readonly VirtualServiceResource[],
): HostIndex<VirtualServiceResource> {
  const index = new HostIndex<VirtualServiceResource>()
  for (const vs of virtualServices) {
    for (const host of vs.spec.hosts ?? []) index.add(toFqdn(host, vs.namespace), vs)
  }
  return index
}

/** Istio's REGISTRY_ONLY catch-all: any host not in the registry gets a direct 502 (virtual host `block_all`). */
function withBlockAll(table: RouteTable): RouteTable {
  const blockAll = new Route({
    name: 'block_all',
    action: { kind: 'direct', status: 502 },
    requestHeaders: HeaderEdits.none,
    responseHeaders: HeaderEdits.none,
    timeoutMs: 0,
  })
  return new RouteTable(table.name, [
    ...table.virtualHosts,
    { name: 'block_all', domains: ['*'], port: 0, routes: [blockAll] },
  ])
}

function defaultRoute(port: number, fqdn: string, clusters: ReadonlyMap<string, ClusterModel>): Route {
  const clusterName = outboundClusterName(port, '', fqdn)
  return new Route({
    name: 'default',
    action: {
      kind: 'forward',
      destinations: [
        {
          // The cluster's own name string: ten thousand services need not hold a copy each.
          clusterName: clusters.get(clusterName)?.name ?? clusterName,
          weight: 1,
          requestHeaders: HeaderEdits.none,
          responseHeaders: HeaderEdits.none,
        },
      ],
      totalWeight: 1,
    },
    requestHeaders: HeaderEdits.none,
    responseHeaders: HeaderEdits.none,
    timeoutMs: 0,
    // Istio's default outbound route carries its default retry policy, as VirtualService routes do.
    retryPolicy: defaultRetryPolicy,
  })
}
