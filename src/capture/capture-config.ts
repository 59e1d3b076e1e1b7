// What `outrigger capture install` captures: istio-iptables' settings, read from its flags and from DESIGN §3's names.

import { isIP } from 'node:net'
import { parseArgs } from 'node:util'

/** REDIRECT (nat) or TPROXY (mangle + policy routing) for inbound traffic, as istio-iptables' -m. */
export type InterceptionMode = 'REDIRECT' | 'TPROXY'

/** One address family's CIDR list: `*` (everything) or explicit ranges (istio tools/common/config NetworkRange). */
export interface NetworkRange {
  readonly wildcard: boolean
  readonly cidrs: readonly string[]
  /** A range inside 127.0.0.0/8 or ::1: loopback destinations are then not returned early (istio HasLoopBackIP). */
  readonly hasLoopback: boolean
}

/** The settings istio-iptables reads (tools/common/config/config.go `Config`), with its defaults. */
export interface CaptureConfig {
  /** -p/--envoy-port: where captured outbound TCP goes (15001). */
  readonly proxyPort: number
  /** -z/--inbound-capture-port: where captured inbound TCP goes (15006). */
  readonly inboundCapturePort: number
  /** -e/--inbound-tunnel-port: the HBONE tunnel port, never captured inbound (15008). */
  readonly inboundTunnelPort: number
  /** -u/--proxy-uid: the proxy's uids, whose traffic is never captured (1337). */
  readonly proxyUids: readonly string[]
  /** -g/--proxy-gid: the proxy's gids (defaults to the uids, as istio-iptables). */
  readonly proxyGids: readonly string[]
  readonly mode: InterceptionMode
  /** -t/--istio-inbound-tproxy-mark (1337). */
  readonly tproxyMark: number
  /** -r/--istio-inbound-tproxy-route-table (133). */
  readonly tproxyRouteTable: number
  /** -b: `*`, a list of ports, or empty (no inbound capture; istio-iptables' default). */
  readonly inboundPorts: '*' | readonly string[]
  /** -d: inbound ports left alone when inbound is `*`. */
  readonly inboundPortsExclude: readonly string[]
  /** -i: outbound CIDRs captured, `*` for all; empty captures no outbound by address (istio-iptables' default). */
  readonly outboundRangesInclude: string
  /** -x: outbound CIDRs never captured. */
  readonly outboundRangesExclude: string
  /** -q: outbound ports always captured, whatever the address. */
  readonly outboundPortsInclude: readonly string[]
  /** -o: outbound ports never captured (TCP and UDP). */
  readonly outboundPortsExclude: readonly string[]
  /** -c: interfaces neither inbound nor outbound capture touches. */
  readonly excludeInterfaces: readonly string[]
  readonly redirectDns: boolean
  readonly captureAllDns: boolean
  readonly dropInvalid: boolean
  /** --dual-stack: IPv6 rules beside IPv4 ones even when the pod's first address is IPv4. */
  readonly dualStack: boolean
  /** --enable-ipv6 / --disable-ipv6: force the IPv6 decision instead of istio-iptables' detection. */
  readonly ipv6: 'auto' | 'on' | 'off'
  readonly dryRun: boolean
}

/** The port istio-agent's DNS proxy listens on (tools/istio-iptables/pkg/constants IstioAgentDNSListenerPort). */
export const DNS_PROXY_PORT = 15053

/** A bad flag or value: the CLI prints it with the usage and exits 2. */
export class CaptureUsageError extends Error {
  override name = 'CaptureUsageError'
}

/** Flags: istio-iptables' long and short names, then DESIGN §3's names for the same settings. */
const options = {
  'envoy-port': { type: 'string', short: 'p' },
  'inbound-capture-port': { type: 'string', short: 'z' },
  'inbound-tunnel-port': { type: 'string', short: 'e' },
  'proxy-uid': { type: 'string', short: 'u' },
  'proxy-gid': { type: 'string', short: 'g' },
  'istio-inbound-interception-mode': { type: 'string', short: 'm' },
  'istio-inbound-tproxy-mark': { type: 'string', short: 't' },
  'istio-inbound-tproxy-route-table': { type: 'string', short: 'r' },
  'istio-inbound-ports': { type: 'string', short: 'b' },
  'istio-local-exclude-ports': { type: 'string', short: 'd' },
  'istio-service-cidr': { type: 'string', short: 'i' },
  'istio-service-exclude-cidr': { type: 'string', short: 'x' },
  'istio-outbound-ports': { type: 'string', short: 'q' },
  'istio-local-outbound-ports-exclude': { type: 'string', short: 'o' },
  'istio-exclude-interfaces': { type: 'string', short: 'c' },
  'redirect-dns': { type: 'boolean' },
  'capture-all-dns': { type: 'boolean' },
  'drop-invalid': { type: 'boolean' },
  'dual-stack': { type: 'boolean' },
  'enable-ipv6': { type: 'boolean' },
  'disable-ipv6': { type: 'boolean' },
  'dry-run': { type: 'boolean', short: 'n' },
  // DESIGN §3 and `outrigger inject`'s names.
  mode: { type: 'string' },
  'inbound-ports': { type: 'string' },
  'exclude-inbound-ports': { type: 'string' },
  'outbound-ip-ranges': { type: 'string' },
  'exclude-outbound-ip-ranges': { type: 'string' },
  'outbound-ports': { type: 'string' },
  'exclude-outbound-ports': { type: 'string' },
  'exclude-interfaces': { type: 'string' },
} as const

/** Splits istio-iptables' comma lists: blanks dropped, spaces trimmed (tools/common/config Split). */
export function splitList(value: string | undefined): string[] {
  if (value === undefined) return []
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

function port(name: string, text: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new CaptureUsageError(`--${name} ${text}: not a port`)
  return n
}

function ports(name: string, text: string | undefined): string[] {
  const list = splitList(text)
  for (const p of list) {
    // iptables takes ranges (a:b) in --dport, and istio-iptables passes them through.
    for (const part of p.split(':')) port(name, part)
  }
  return list
}

function whole(name: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new CaptureUsageError(`--${name} ${text}: not a whole number`)
  return Number(text)
}

function ids(name: string, text: string): string[] {
  const list = splitList(text)
  for (const id of list)
    if (!/^\d+$/.test(id)) throw new CaptureUsageError(`--${name} ${id}: not a numeric id`)
  if (list.length === 0) throw new CaptureUsageError(`--${name} is empty`)
  return list
}

function mode(text: string): InterceptionMode {
  const upper = text.toUpperCase()
  if (upper === 'REDIRECT' || upper === 'TPROXY') return upper
  throw new CaptureUsageError(`--mode ${text}: expected redirect or tproxy`)
}

function cidrs(name: string, text: string): void {
  if (text.trim() === '*') return
  for (const cidr of splitList(text)) {
    const [address, bits, ...rest] = cidr.split('/')
    const family = isIP(address ?? '')
    const max = family === 4 ? 32 : 128
    const prefix = Number(bits)
    if (family === 0 || rest.length > 0 || !/^\d+$/.test(bits ?? '') || prefix > max) {
      throw new CaptureUsageError(`--${name} ${cidr}: not a CIDR (address/prefix)`)
    }
  }
}

/** Reads `outrigger capture install|remove` flags; a flag given by both its names takes the later one. */
export function parseCaptureArgs(args: readonly string[]): CaptureConfig {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options }>>['values']
  try {
    ;({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }))
  } catch (error) {
    throw new CaptureUsageError((error as Error).message)
  }
  const pick = (...names: (keyof typeof options)[]): string | undefined => {
    let found: string | undefined
    for (const name of names) {
      const value = values[name]
      if (typeof value === 'string') found = value
    }
    return found
  }
  const uids = ids('proxy-uid', pick('proxy-uid') ?? '1337')
  const gidText = pick('proxy-gid')
  const inbound = pick('istio-inbound-ports', 'inbound-ports') ?? ''
  const include = pick('istio-service-cidr', 'outbound-ip-ranges') ?? ''
  const exclude = pick('istio-service-exclude-cidr', 'exclude-outbound-ip-ranges') ?? ''
  cidrs('outbound-ip-ranges', include)
  if (exclude.trim() === '*') {
    throw new CaptureUsageError(
      '--exclude-outbound-ip-ranges cannot be *: exclude everything with an empty --outbound-ip-ranges',
    )
  }
  cidrs('exclude-outbound-ip-ranges', exclude)
  if (values['enable-ipv6'] === true && values['disable-ipv6'] === true) {
    throw new CaptureUsageError('--enable-ipv6 and --disable-ipv6 together')
  }
  const modeText = pick('istio-inbound-interception-mode', 'mode')
  return {
    proxyPort: port('envoy-port', pick('envoy-port') ?? '15001'),
    inboundCapturePort: port('inbound-capture-port', pick('inbound-capture-port') ?? '15006'),
    inboundTunnelPort: port('inbound-tunnel-port', pick('inbound-tunnel-port') ?? '15008'),
    proxyUids: uids,
    proxyGids: gidText === undefined ? uids : ids('proxy-gid', gidText),
    mode: modeText === undefined || modeText === '' ? 'REDIRECT' : mode(modeText),
    tproxyMark: whole('istio-inbound-tproxy-mark', pick('istio-inbound-tproxy-mark') ?? '1337'),
    tproxyRouteTable: whole(
      'istio-inbound-tproxy-route-table',
      pick('istio-inbound-tproxy-route-table') ?? '133',
    ),
    inboundPorts: inbound.trim() === '*' ? '*' : ports('inbound-ports', inbound),
    inboundPortsExclude: ports(
      'exclude-inbound-ports',
      pick('istio-local-exclude-ports', 'exclude-inbound-ports'),
    ),
    outboundRangesInclude: include.trim(),
    outboundRangesExclude: exclude.trim(),
    outboundPortsInclude: ports('outbound-ports', pick('istio-outbound-ports', 'outbound-ports')),
    outboundPortsExclude: ports(
      'exclude-outbound-ports',
      pick('istio-local-outbound-ports-exclude', 'exclude-outbound-ports'),
    ),
    excludeInterfaces: splitList(pick('istio-exclude-interfaces', 'exclude-interfaces')),
    redirectDns: values['redirect-dns'] === true,
    captureAllDns: values['capture-all-dns'] === true,
    dropInvalid: values['drop-invalid'] === true,
    dualStack: values['dual-stack'] === true,
    ipv6: values['enable-ipv6'] === true ? 'on' : values['disable-ipv6'] === true ? 'off' : 'auto',
    dryRun: values['dry-run'] === true,
  }
}

function isLoopback(cidr: string): boolean {
  const address = cidr.split('/')[0] ?? ''
  return isIP(address) === 4 ? address.startsWith('127.') : address === '::1'
}

/** Splits a CIDR list into its IPv4 and IPv6 ranges (tools/common/config SeparateV4V6). */
export function separateV4V6(list: string): { v4: NetworkRange; v6: NetworkRange } {
  if (list === '*') {
    const all = { wildcard: true, cidrs: [], hasLoopback: false }
    return { v4: all, v6: all }
  }
  const v4: string[] = []
  const v6: string[] = []
  for (const cidr of splitList(list)) (isIP(cidr.split('/')[0] ?? '') === 4 ? v4 : v6).push(cidr)
  const range = (cidrs: string[]): NetworkRange => ({
    wildcard: false,
    cidrs,
    hasLoopback: cidrs.some(isLoopback),
  })
  return { v4: range(v4), v6: range(v6) }
}
