// `outrigger capture install|remove`: istio-iptables' rules in the current network namespace (the init container's job).

import { CaptureUsageError, parseCaptureArgs } from '../capture/capture-config.ts'
import { CaptureError } from '../capture/capture-errors.ts'
import { describeCapture, installCapture, removeCapture } from '../capture/capture-installer.ts'

export const captureUsage = `usage:
  outrigger capture install [flags]   sends the pod's TCP traffic to the proxy, as istio-iptables does
  outrigger capture remove            removes exactly what install added
flags (istio-iptables' names, then the short names DESIGN §3 and outrigger inject use):
  -p, --envoy-port 15001                     where captured outbound TCP goes
  -z, --inbound-capture-port 15006           where captured inbound TCP goes
  -e, --inbound-tunnel-port 15008            never captured inbound
  -u, --proxy-uid 1337                       uids (comma list) whose traffic is never captured
  -g, --proxy-gid <uids>                     gids likewise (default: the uids)
  -m, --istio-inbound-interception-mode, --mode  REDIRECT (default) | TPROXY
  -t, --istio-inbound-tproxy-mark 1337       -r, --istio-inbound-tproxy-route-table 133
  -b, --istio-inbound-ports, --inbound-ports                 '*' | ports | '' (default: no inbound capture)
  -d, --istio-local-exclude-ports, --exclude-inbound-ports   inbound ports left alone with '*'
  -i, --istio-service-cidr, --outbound-ip-ranges             '*' | CIDRs | '' (default: none by address)
  -x, --istio-service-exclude-cidr, --exclude-outbound-ip-ranges  CIDRs never captured
  -q, --istio-outbound-ports, --outbound-ports               ports always captured
  -o, --istio-local-outbound-ports-exclude, --exclude-outbound-ports  ports never captured
  -c, --istio-exclude-interfaces, --exclude-interfaces       NICs left alone
  --redirect-dns        DNS (UDP and TCP port 53) to resolv.conf's nameservers goes to 15053
  --capture-all-dns     with --redirect-dns: all port-53 traffic, whatever the server
  --drop-invalid        drop conntrack INVALID packets
  --dual-stack          IPv6 rules too when the pod has an IPv6 address beside its IPv4 one
  --enable-ipv6 | --disable-ipv6   force IPv6 rules on or off (default: on when the pod's first address is IPv6)
  -n, --dry-run         print the rules (iptables-restore input) and change nothing
Exit codes: 0 done, 1 not applied (no CAP_NET_ADMIN, iptables missing, a kernel module missing), 2 bad flags.
`

export function capture(
  args: readonly string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): number {
  const [sub, ...rest] = args
  try {
    if (sub === 'install') {
      const config = parseCaptureArgs(rest)
      const rules = installCapture(config)
      if (config.dryRun) out.write(describeCapture(config, rules))
      else
        out.write(
          `outrigger capture: installed (${config.mode}, ${rules.v4.length} IPv4 rules` +
            `${rules.v6.length > 0 ? `, ${rules.v6.length} IPv6 rules` : ', IPv6 off'})\n`,
        )
      return 0
    }
    if (sub === 'remove') {
      // remove finds what is installed by itself: install's flags are checked and otherwise ignored.
      parseCaptureArgs(rest)
      const { removed } = removeCapture()
      out.write(`outrigger capture: ${removed ? 'removed' : 'nothing to remove'}\n`)
      return 0
    }
    err.write(captureUsage)
    return sub === undefined || sub === 'help' || sub === '--help' ? 0 : 2
  } catch (error) {
    if (error instanceof CaptureUsageError) {
      err.write(`outrigger capture: ${error.message}\n${captureUsage}`)
      return 2
    }
    if (error instanceof CaptureError) {
      err.write(`outrigger capture: ${error.message}\n`)
      return 1
    }
    throw error
  }
}
