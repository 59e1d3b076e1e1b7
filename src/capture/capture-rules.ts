// The iptables rules istio-iptables writes for a CaptureConfig (tools/istio-iptables/pkg/capture/run.go), per family.

import { type CaptureConfig, DNS_PROXY_PORT, type NetworkRange, separateV4V6 } from './capture-config.ts'

export type Table = 'nat' | 'mangle' | 'raw'

/** One rule: appended to `chain` in `table`, or inserted at `insertAt` (1-based) as `-I` does. */
export interface Rule {
  readonly table: Table
  readonly chain: string
  readonly args: readonly string[]
  readonly insertAt?: number
}

/** Both families' rules: IPv6 ones are applied only when IPv6 is on. */
export interface CaptureRules {
  readonly v4: readonly Rule[]
  readonly v6: readonly Rule[]
}

/** What the machine tells the builder: whether IPv6 is captured and resolv.conf's nameservers. */
export interface CaptureHost {
  readonly ipv6: boolean
  readonly dnsServersV4: readonly string[]
  readonly dnsServersV6: readonly string[]
}

/** Istio's chain names (tools/istio-iptables/pkg/constants). */
export const CHAINS = {
  output: 'ISTIO_OUTPUT',
  outputDns: 'ISTIO_OUTPUT_DNS',
  inbound: 'ISTIO_INBOUND',
  divert: 'ISTIO_DIVERT',
  tproxy: 'ISTIO_TPROXY',
  redirect: 'ISTIO_REDIRECT',
  inRedirect: 'ISTIO_IN_REDIRECT',
  drop: 'ISTIO_DROP',
} as const

export const OUR_CHAINS: ReadonlySet<string> = new Set(Object.values(CHAINS))

/** In TPROXY mode the proxy's own connections to the pod's address carry this mark (constants.OutboundMark). */
export const OUTBOUND_MARK = '1338'

/** The inbound passthrough's source addresses: the proxy connects to the app from them (Envoy's upstream_bind). */
export const PASSTHROUGH_SOURCE = { v4: '127.0.0.6/32', v6: '::6/128' } as const
const LOOPBACK = { v4: '127.0.0.1/32', v6: '::1/128' } as const
const FAMILY = '<family-address>'

/** Collects rules for both families as istio-iptables' builder does (AppendRule, AppendRuleV4, AppendVersionedRule…). */
class RuleList {
  readonly v4: Rule[] = []
  readonly v6: Rule[] = []

  append(table: Table, chain: string, ...args: string[]): void {
    this.appendV4(table, chain, ...args)
    this.appendV6(table, chain, ...args)
  }

  appendV4(table: Table, chain: string, ...args: string[]): void {
    this.v4.push({ table, chain, args })
  }

  appendV6(table: Table, chain: string, ...args: string[]): void {
    this.v6.push({ table, chain, args })
  }

  appendFor(family: 'v4' | 'v6', table: Table, chain: string, ...args: string[]): void {
    this[family].push({ table, chain, args })
  }

  /** The same rule with the family's own address where the arguments say FAMILY. */
  appendVersioned(
    addresses: { v4: string; v6: string },
    table: Table,
    chain: string,
    ...args: string[]
  ): void {
    this.appendV4(table, chain, ...args.map((a) => (a === FAMILY ? addresses.v4 : a)))
    this.appendV6(table, chain, ...args.map((a) => (a === FAMILY ? addresses.v6 : a)))
  }

  insert(family: 'v4' | 'v6' | 'both', table: Table, chain: string, at: number, ...args: string[]): void {
    if (family !== 'v6') this.v4.push({ table, chain, args, insertAt: at })
    if (family !== 'v4') this.v6.push({ table, chain, args, insertAt: at })
  }
}

function inboundRules(config: CaptureConfig, rules: RuleList): void {
  if (config.inboundPorts !== '*' && config.inboundPorts.length === 0) return
  const tproxy = config.mode === 'TPROXY'
  const mark = String(config.tproxyMark)
  const table: Table = tproxy ? 'mangle' : 'nat'
  if (tproxy) {
    rules.append('mangle', CHAINS.divert, '-j', 'MARK', '--set-mark', mark)
    rules.append('mangle', CHAINS.divert, '-j', 'ACCEPT')
    rules.appendVersioned(
      LOOPBACK,
      'mangle',
      CHAINS.tproxy,
      '!',
      '-d',
      FAMILY,
      '-p',
      'tcp',
      '-j',
      'TPROXY',
      '--tproxy-mark',
      `${mark}/0xffffffff`,
      '--on-port',
      String(config.inboundCapturePort),
    )
  }
  rules.append(table, 'PREROUTING', '-p', 'tcp', '-j', CHAINS.inbound)
  if (config.inboundPorts === '*') {
    for (const port of config.inboundPortsExclude) {
      rules.append(table, CHAINS.inbound, '-p', 'tcp', '--dport', port, '-j', 'RETURN')
    }
    if (tproxy) {
      rules.append(
        'mangle',
        CHAINS.inbound,
        '-p',
        'tcp',
        '-m',
        'conntrack',
        '--ctstate',
        'RELATED,ESTABLISHED',
        '-j',
        CHAINS.divert,
      )
      rules.append('mangle', CHAINS.inbound, '-p', 'tcp', '-j', CHAINS.tproxy)
    } else {
      rules.append('nat', CHAINS.inbound, '-p', 'tcp', '-j', CHAINS.inRedirect)
    }
    return
  }
  for (const port of config.inboundPorts) {
    if (tproxy) {
      rules.append(
        'mangle',
        CHAINS.inbound,
        '-p',
        'tcp',
        '--dport',
        port,
        '-m',
        'conntrack',
        '--ctstate',
        'RELATED,ESTABLISHED',
        '-j',
        CHAINS.divert,
      )
      rules.append('mangle', CHAINS.inbound, '-p', 'tcp', '--dport', port, '-j', CHAINS.tproxy)
    } else {
      rules.append('nat', CHAINS.inbound, '-p', 'tcp', '--dport', port, '-j', CHAINS.inRedirect)
    }
  }
}

/** The proxy's own traffic: not captured, except its connections back to the pod's own address, which go inbound. */
function proxyOwnerRules(
  config: CaptureConfig,
  include: { v4: NetworkRange; v6: NetworkRange },
  dns: boolean,
  rules: RuleList,
): void {
  const tunnel = String(config.inboundTunnelPort)
  const loopbackIncluded = include.v4.hasLoopback || include.v6.hasLoopback
  const owner = (flag: '--uid-owner' | '--gid-owner', id: string, multiportDns: boolean): void => {
    const notPorts = multiportDns
      ? ['-m', 'multiport', '!', '--dports', `53,${tunnel}`]
      : ['!', '--dport', tunnel]
    rules.appendVersioned(
      LOOPBACK,
      'nat',
      CHAINS.output,
      '-o',
      'lo',
      '!',
      '-d',
      FAMILY,
      '-p',
      'tcp',
      ...notPorts,
      '-m',
      'owner',
      flag,
      id,
      '-j',
      CHAINS.inRedirect,
    )
    if (!loopbackIncluded) {
      // An app's own loopback traffic stays local (DNS to a local resolver excepted, so it can be captured).
      const notDns = dns ? ['-p', 'tcp', '!', '--dport', '53'] : []
      rules.append('nat', CHAINS.output, '-o', 'lo', ...notDns, '-m', 'owner', '!', flag, id, '-j', 'RETURN')
    }
    rules.append('nat', CHAINS.output, '-m', 'owner', flag, id, '-j', 'RETURN')
  }
  // Istio puts 53 beside the tunnel port only in the uid rule (run.go), and so do we.
  for (const uid of config.proxyUids) owner('--uid-owner', uid, dns)
  for (const gid of config.proxyGids) owner('--gid-owner', gid, false)
}

/** Sends the app's DNS to the agent's DNS proxy on 15053 (run.go SetupDNSRedir and addDNSConntrackZones). */
function dnsRules(config: CaptureConfig, host: CaptureHost, rules: RuleList): void {
  const all = config.captureAllDns
  const port = String(DNS_PROXY_PORT)
  rules.append('raw', 'OUTPUT', '-j', CHAINS.outputDns)
  if (all || host.dnsServersV4.length > 0) rules.appendV4('nat', CHAINS.output, '-j', CHAINS.outputDns)
  if (all || host.dnsServersV6.length > 0) rules.appendV6('nat', CHAINS.output, '-j', CHAINS.outputDns)
  for (const protocol of ['tcp', 'udp'] as const) {
    // iptables accepts both spellings; Istio writes --to-ports for TCP and --to-port for UDP.
    const to = protocol === 'tcp' ? '--to-ports' : '--to-port'
    if (all) {
      rules.append('nat', CHAINS.outputDns, '-p', protocol, '--dport', '53', '-j', 'REDIRECT', to, port)
      continue
    }
    for (const { family, servers, mask } of dnsServerFamilies(host)) {
      for (const server of servers) {
        const match = ['-p', protocol, '--dport', '53', '-d', `${server}${mask}`]
        rules.appendFor(family, 'nat', CHAINS.outputDns, ...match, '-j', 'REDIRECT', to, port)
      }
    }
  }
  // Conntrack zones keep the app→resolver and proxy→upstream-resolver flows apart, so NAT entries never collide.
  for (const [flag, list] of [
    ['--uid-owner', config.proxyUids],
    ['--gid-owner', config.proxyGids],
  ] as const) {
    for (const id of list) {
      rules.append(
        'raw',
        CHAINS.outputDns,
        '-p',
        'udp',
        '--dport',
        '53',
        '-m',
        'owner',
        flag,
        id,
        '-j',
        'CT',
        '--zone',
        '1',
      )
      rules.append(
        'raw',
        CHAINS.outputDns,
        '-p',
        'udp',
        '--sport',
        port,
        '-m',
        'owner',
        flag,
        id,
        '-j',
        'CT',
        '--zone',
        '2',
      )
    }
  }
  if (all) {
    rules.append('raw', 'PREROUTING', '-j', CHAINS.inbound)
    rules.append('raw', CHAINS.outputDns, '-p', 'udp', '--dport', '53', '-j', 'CT', '--zone', '2')
    rules.append('raw', CHAINS.inbound, '-p', 'udp', '--sport', '53', '-j', 'CT', '--zone', '1')
    return
  }
  for (const { family, servers, mask } of dnsServerFamilies(host)) {
    if (servers.length > 0) rules.appendFor(family, 'raw', 'PREROUTING', '-j', CHAINS.inbound)
    for (const server of servers) {
      const toServer = ['-p', 'udp', '--dport', '53', '-d', `${server}${mask}`]
      const fromServer = ['-p', 'udp', '--sport', '53', '-s', `${server}${mask}`]
      rules.appendFor(family, 'raw', CHAINS.outputDns, ...toServer, '-j', 'CT', '--zone', '2')
      rules.appendFor(family, 'raw', CHAINS.inbound, ...fromServer, '-j', 'CT', '--zone', '1')
    }
  }
}

/** The pod's resolvers per address family, with the mask that matches one of them exactly. */
function dnsServerFamilies(
  host: CaptureHost,
): { family: 'v4' | 'v6'; servers: readonly string[]; mask: string }[] {
  return [
    { family: 'v4', servers: host.dnsServersV4, mask: '/32' },
    { family: 'v6', servers: host.dnsServersV6, mask: '/128' },
  ]
}

function outboundIncludeRules(range: NetworkRange, append: (...args: string[]) => void): void {
  if (range.wildcard) {
    append('-j', CHAINS.redirect)
    return
  }
  for (const cidr of range.cidrs) append('-d', cidr, '-j', CHAINS.redirect)
}

/** TPROXY's marks: the proxy's replies and its own connections to the pod's address (run.go, TPROXY tail). */
function tproxyMarkRules(config: CaptureConfig, rules: RuleList): void {
  const mark = String(config.tproxyMark)
  rules.append(
    'mangle',
    'PREROUTING',
    '-p',
    'tcp',
    '-m',
    'mark',
    '--mark',
    mark,
    '-j',
    'CONNMARK',
    '--save-mark',
  )
  rules.append('mangle', 'OUTPUT', '-p', 'tcp', '-o', 'lo', '-m', 'mark', '--mark', mark, '-j', 'RETURN')
  for (const [flag, list] of [
    ['--uid-owner', config.proxyUids],
    ['--gid-owner', config.proxyGids],
  ] as const) {
    for (const id of list) {
      rules.appendVersioned(
        LOOPBACK,
        'mangle',
        'OUTPUT',
        '!',
        '-d',
        FAMILY,
        '-p',
        'tcp',
        '-o',
        'lo',
        '-m',
        'owner',
        flag,
        id,
        '-j',
        'MARK',
        '--set-mark',
        OUTBOUND_MARK,
      )
    }
  }
  rules.append(
    'mangle',
    'OUTPUT',
    '-p',
    'tcp',
    '-m',
    'connmark',
    '--mark',
    mark,
    '-j',
    'CONNMARK',
    '--restore-mark',
  )
  rules.insert('both', 'mangle', CHAINS.inbound, 1, '-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'RETURN')
  rules.insert(
    'v4',
    'mangle',
    CHAINS.inbound,
    2,
    '-p',
    'tcp',
    '-s',
    PASSTHROUGH_SOURCE.v4,
    '-i',
    'lo',
    '-j',
    'RETURN',
  )
  rules.insert(
    'v6',
    'mangle',
    CHAINS.inbound,
    2,
    '-p',
    'tcp',
    '-s',
    PASSTHROUGH_SOURCE.v6,
    '-i',
    'lo',
    '-j',
    'RETURN',
  )
  rules.insert(
    'both',
    'mangle',
    CHAINS.inbound,
    3,
    '-p',
    'tcp',
    '-i',
    'lo',
    '-m',
    'mark',
    '!',
    '--mark',
    OUTBOUND_MARK,
    '-j',
    'RETURN',
  )
}

/** Builds the rules in istio-iptables' order (IptablesConfigurator.Run). */
export function buildCaptureRules(config: CaptureConfig, host: CaptureHost): CaptureRules {
  const rules = new RuleList()
  const exclude = separateV4V6(config.outboundRangesExclude)
  const include = separateV4V6(config.outboundRangesInclude)
  let dns = config.redirectDns
  // With neither --capture-all-dns nor a nameserver in resolv.conf, Istio turns DNS capture off.
  if (dns && !config.captureAllDns && host.dnsServersV4.length === 0 && host.dnsServersV6.length === 0)
    dns = false

  for (const nic of config.excludeInterfaces) {
    rules.append('nat', 'PREROUTING', '-i', nic, '-j', 'RETURN')
    rules.append('nat', 'OUTPUT', '-o', nic, '-j', 'RETURN')
  }
  if (config.mode === 'TPROXY') {
    for (const nic of config.excludeInterfaces) {
      rules.append('mangle', 'PREROUTING', '-i', nic, '-j', 'RETURN')
      rules.append('mangle', 'OUTPUT', '-o', nic, '-j', 'RETURN')
    }
  }
  if (config.dropInvalid) {
    rules.append('mangle', 'PREROUTING', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', CHAINS.drop)
    rules.append('mangle', CHAINS.drop, '-j', 'DROP')
  }
  rules.append(
    'nat',
    CHAINS.inbound,
    '-p',
    'tcp',
    '--dport',
    String(config.inboundTunnelPort),
    '-j',
    'RETURN',
  )
  rules.append('nat', CHAINS.redirect, '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(config.proxyPort))
  rules.append(
    'nat',
    CHAINS.inRedirect,
    '-p',
    'tcp',
    '-j',
    'REDIRECT',
    '--to-ports',
    String(config.inboundCapturePort),
  )
  inboundRules(config, rules)

  rules.append('nat', 'OUTPUT', '-j', CHAINS.output)
  for (const port of config.outboundPortsExclude) {
    rules.append('nat', CHAINS.output, '-p', 'tcp', '--dport', port, '-j', 'RETURN')
    rules.append('nat', CHAINS.output, '-p', 'udp', '--dport', port, '-j', 'RETURN')
  }
  // The inbound passthrough's connections to the app (source 127.0.0.6 / ::6) are never captured again.
  rules.appendVersioned(PASSTHROUGH_SOURCE, 'nat', CHAINS.output, '-o', 'lo', '-s', FAMILY, '-j', 'RETURN')
  proxyOwnerRules(config, include, dns, rules)
  if (dns) dnsRules(config, host, rules)
  rules.appendVersioned(LOOPBACK, 'nat', CHAINS.output, '-d', FAMILY, '-j', 'RETURN')
  for (const cidr of exclude.v4.cidrs) rules.appendV4('nat', CHAINS.output, '-d', cidr, '-j', 'RETURN')
  for (const cidr of exclude.v6.cidrs) rules.appendV6('nat', CHAINS.output, '-d', cidr, '-j', 'RETURN')
  for (const port of config.outboundPortsInclude) {
    rules.append('nat', CHAINS.output, '-p', 'tcp', '--dport', port, '-j', CHAINS.redirect)
  }
  outboundIncludeRules(include.v4, (...args) => rules.appendV4('nat', CHAINS.output, ...args))
  outboundIncludeRules(include.v6, (...args) => rules.appendV6('nat', CHAINS.output, ...args))
  if (config.mode === 'TPROXY') {
    tproxyMarkRules(config, rules)
  }
  return { v4: rules.v4, v6: host.ipv6 ? rules.v6 : [] }
}
