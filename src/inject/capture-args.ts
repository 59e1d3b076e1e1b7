// The arguments of the capture init container, from the pod's traffic annotations as Istio's injection template passes them to istio-iptables.

/**
 * `outrigger capture install`'s long flags (DESIGN.md §3; istio-iptables' meanings): istio-iptables'
 * short flag in each comment. The proxy's ports (-p 15001, -z 15006) are capture's defaults and left out.
 */
const flags = {
  proxyUid: '--proxy-uid', // -u
  mode: '--mode', // -m
  outboundIpRanges: '--outbound-ip-ranges', // -i
  excludeOutboundIpRanges: '--exclude-outbound-ip-ranges', // -x
  inboundPorts: '--inbound-ports', // -b
  excludeInboundPorts: '--exclude-inbound-ports', // -d
  outboundPorts: '--outbound-ports', // -q
  excludeOutboundPorts: '--exclude-outbound-ports', // -o
} as const

/** The traffic annotations a pod may carry (istio/api annotation names), and the interception mode. */
export const TRAFFIC_ANNOTATIONS = {
  interceptionMode: 'sidecar.istio.io/interceptionMode',
  includeOutboundIPRanges: 'traffic.sidecar.istio.io/includeOutboundIPRanges',
  excludeOutboundIPRanges: 'traffic.sidecar.istio.io/excludeOutboundIPRanges',
  includeInboundPorts: 'traffic.sidecar.istio.io/includeInboundPorts',
  excludeInboundPorts: 'traffic.sidecar.istio.io/excludeInboundPorts',
  includeOutboundPorts: 'traffic.sidecar.istio.io/includeOutboundPorts',
  excludeOutboundPorts: 'traffic.sidecar.istio.io/excludeOutboundPorts',
} as const

/** The uid the proxy runs as, whose own traffic capture lets through (Istio's ProxyUID default). */
export const PROXY_UID = 1337

/**
 * Ports never captured inbound: Prometheus (15090), the health port (15021), and Istio's agent status
 * port (15020), which Istio's template excludes by default (`excludeInboundPort` of statusPort 15020).
 */
const alwaysExcludedInboundPorts = ['15090', '15021']
const istioStatusPort = '15020'

export type InterceptionMode = 'REDIRECT' | 'TPROXY' | 'NONE'

/** The pod's interception mode (annotation, else REDIRECT as meshConfig's default); an unknown value is an error. */
export function interceptionMode(annotations: Readonly<Record<string, string>>): InterceptionMode {
  const mode = annotations[TRAFFIC_ANNOTATIONS.interceptionMode] ?? 'REDIRECT'
  if (mode === 'REDIRECT' || mode === 'TPROXY' || mode === 'NONE') return mode
  throw new RangeError(
    `annotation ${TRAFFIC_ANNOTATIONS.interceptionMode}: '${mode}' is not one of REDIRECT, TPROXY, NONE`,
  )
}

/**
 * `capture install` and its flags for a pod with these annotations, as the injection template builds
 * istio-iptables' arguments: outbound ranges and inbound ports always (defaults `*` and `*`, the
 * excluded ranges empty), the excluded inbound ports as 15090,15021 then the annotation's ports then
 * 15020, and the outbound port lists only when annotated.
 */
export function captureArgs(
  annotations: Readonly<Record<string, string>>,
  mode: 'REDIRECT' | 'TPROXY',
): string[] {
  const annotated = (key: keyof typeof TRAFFIC_ANNOTATIONS): string | undefined =>
    annotations[TRAFFIC_ANNOTATIONS[key]]
  const args = [
    'capture',
    'install',
    flags.proxyUid,
    String(PROXY_UID),
    flags.mode,
    mode.toLowerCase(),
    flags.outboundIpRanges,
    annotated('includeOutboundIPRanges') ?? '*',
  ]
  const excludedRanges = annotated('excludeOutboundIPRanges') ?? ''
  if (excludedRanges !== '') args.push(flags.excludeOutboundIpRanges, excludedRanges)
  args.push(
    flags.inboundPorts,
    annotated('includeInboundPorts') ?? '*',
    flags.excludeInboundPorts,
    [...alwaysExcludedInboundPorts, withPort(annotated('excludeInboundPorts') ?? '', istioStatusPort)]
      .filter((ports) => ports !== '')
      .join(','),
  )
  const outboundPorts = annotated('includeOutboundPorts')
  if (outboundPorts !== undefined) args.push(flags.outboundPorts, outboundPorts)
  const excludedOutboundPorts = annotated('excludeOutboundPorts')
  if (excludedOutboundPorts !== undefined) args.push(flags.excludeOutboundPorts, excludedOutboundPorts)
  return args
}

/** Istio's excludeInboundPort (pkg/kube/inject/template.go): the list with `port` appended unless already in it. */
function withPort(list: string, port: string): string {
  const ports = list.split(',').map((item) => item.trim())
  if (ports.includes(port)) return list
  return [...ports.filter((item) => item !== ''), port].join(',')
}
