// A minimal capture rule set for one test pod (REDIRECT to 15001 / 15006, or TPROXY inbound), as istio-iptables writes its core: the proxy's uid and gid and 127.0.0.6 are never captured.

import { type Pod, PROXY_GID, PROXY_UID } from './netns.ts'

/** What the rules send where: Istio's ports by default. */
export interface CaptureRuleOptions {
  readonly outboundPort?: number
  readonly inboundPort?: number
  /** Inbound ports never captured (Istio excludes 15090 and 15021 the same way). */
  readonly excludeInboundPorts?: readonly number[]
  /** Also write the same rules with ip6tables. */
  readonly ipv6?: boolean
}

/**
 * Installs the rules in the pod's own namespace (never the host's): its nat OUTPUT redirects TCP not sent
 * by the proxy user, not to loopback, to the outbound port; nat PREROUTING redirects inbound TCP to the
 * inbound port. Removing the pod's namespace removes them.
 */
export function installRedirectCapture(pod: Pod, options: CaptureRuleOptions = {}): void {
  const outbound = String(options.outboundPort ?? 15001)
  const inbound = String(options.inboundPort ?? 15006)
  const families = options.ipv6 === true ? ['iptables', 'ip6tables'] : ['iptables']
  for (const tool of families) {
    const loopback = tool === 'iptables' ? '127.0.0.1/32' : '::1/128'
    const passthroughSource = tool === 'iptables' ? '127.0.0.6/32' : '::6/128'
    const rules: string[][] = [
      ['-N', 'OR_OUTPUT'],
      ['-A', 'OUTPUT', '-p', 'tcp', '-j', 'OR_OUTPUT'],
      ['-A', 'OR_OUTPUT', '-s', passthroughSource, '-o', 'lo', '-j', 'RETURN'],
      ['-A', 'OR_OUTPUT', '-m', 'owner', '--uid-owner', String(PROXY_UID), '-j', 'RETURN'],
      ['-A', 'OR_OUTPUT', '-m', 'owner', '--gid-owner', String(PROXY_GID), '-j', 'RETURN'],
      ['-A', 'OR_OUTPUT', '-d', loopback, '-j', 'RETURN'],
      ['-A', 'OR_OUTPUT', '-o', 'lo', '-j', 'RETURN'],
      ['-A', 'OR_OUTPUT', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', outbound],
      ['-N', 'OR_INBOUND'],
      ['-A', 'PREROUTING', '-p', 'tcp', '-j', 'OR_INBOUND'],
      ...(options.excludeInboundPorts ?? []).map((p) => [
        '-A',
        'OR_INBOUND',
        '-p',
        'tcp',
        '--dport',
        String(p),
        '-j',
        'RETURN',
      ]),
      ['-A', 'OR_INBOUND', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', inbound],
    ]
    for (const rule of rules) pod.exec(tool, ['-t', 'nat', ...rule])
  }
}

/** Why TPROXY cannot be tested here (the kernel lacks the xt_TPROXY / xt_socket modules), or undefined. */
export function tproxySkipReason(pod: Pod): string | undefined {
  try {
    pod.exec('iptables', ['-t', 'mangle', '-N', 'OR_TPROXY_PROBE'])
    pod.exec('iptables', [
      '-t',
      'mangle',
      '-A',
      'OR_TPROXY_PROBE',
      '-p',
      'tcp',
      '-j',
      'TPROXY',
      '--on-port',
      '15006',
      '--tproxy-mark',
      '0x539/0xffffffff',
    ])
    pod.exec('iptables', [
      '-t',
      'mangle',
      '-A',
      'OR_TPROXY_PROBE',
      '-p',
      'tcp',
      '-m',
      'socket',
      '-j',
      'RETURN',
    ])
    pod.exec('iptables', ['-t', 'mangle', '-F', 'OR_TPROXY_PROBE'])
    pod.exec('iptables', ['-t', 'mangle', '-X', 'OR_TPROXY_PROBE'])
    return undefined
  } catch (err) {
    return `the kernel has no TPROXY target or socket match (xt_TPROXY, xt_socket): ${(err as Error).message.split('\n')[0]}`
  }
}

/**
 * Istio's TPROXY inbound (tools/istio-iptables, --mode tproxy): mangle PREROUTING marks inbound TCP and
 * TPROXYs it to the inbound port; policy routing delivers marked packets locally. Outbound stays a REDIRECT.
 */
export function installTproxyInbound(
  pod: Pod,
  inboundPort = 15006,
  excludePorts: readonly number[] = [],
): void {
  const mark = '0x539/0xffffffff'
  const rules: string[][] = [
    ['-N', 'OR_DIVERT'],
    ['-A', 'OR_DIVERT', '-j', 'MARK', '--set-mark', mark],
    ['-A', 'OR_DIVERT', '-j', 'ACCEPT'],
    ['-N', 'OR_TPROXY'],
    ['-A', 'PREROUTING', '-p', 'tcp', '-m', 'socket', '-j', 'OR_DIVERT'],
    ['-A', 'PREROUTING', '-p', 'tcp', '-j', 'OR_TPROXY'],
    ['-A', 'OR_TPROXY', '-d', '127.0.0.1/32', '-j', 'RETURN'],
    // The proxy's own connections to the app (from 127.0.0.6) arrive on lo: never intercepted again.
    ['-A', 'OR_TPROXY', '-i', 'lo', '-j', 'RETURN'],
    ...excludePorts.map((p) => ['-A', 'OR_TPROXY', '-p', 'tcp', '--dport', String(p), '-j', 'RETURN']),
    ['-A', 'OR_TPROXY', '-p', 'tcp', '-j', 'TPROXY', '--tproxy-mark', mark, '--on-port', String(inboundPort)],
  ]
  for (const rule of rules) pod.exec('iptables', ['-t', 'mangle', ...rule])
  pod.exec('ip', ['rule', 'add', 'fwmark', '1337', 'lookup', '133'])
  pod.exec('ip', ['route', 'add', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '133'])
}
