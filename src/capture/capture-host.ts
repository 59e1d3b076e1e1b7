// What capture reads from the pod: whether IPv6 is in use (istio-iptables' detection) and resolv.conf's nameservers.

import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { CaptureConfig } from './capture-config.ts'
import { CaptureError } from './capture-errors.ts'
import type { CaptureHost } from './capture-rules.ts'

function isLinkLocal(address: string, family: string): boolean {
  return family === 'IPv6' ? /^fe[89ab]/i.test(address) : address.startsWith('169.254.')
}

/**
 * Whether IPv6 is captured, as istio-iptables decides (tools/common/config getLocalIP): the pod's first
 * address that is neither loopback nor link-local is IPv6; with --dual-stack, it has any such IPv6 address.
 * --enable-ipv6 / --disable-ipv6 override the detection.
 */
export function ipv6InUse(config: Pick<CaptureConfig, 'dualStack' | 'ipv6'>): boolean {
  if (config.ipv6 !== 'auto') return config.ipv6 === 'on'
  for (const addresses of Object.values(networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.internal || isLinkLocal(address.address, address.family)) continue
      if (address.family === 'IPv6') return true
      if (!config.dualStack) return false
    }
  }
  return false
}

/** The `nameserver` lines of a resolv.conf, split by family (Istio reads them only for --redirect-dns). */
export function resolvConfServers(text: string): { v4: string[]; v6: string[] } {
  const v4: string[] = []
  const v6: string[] = []
  for (const line of text.split('\n')) {
    const [keyword, address] = line.trim().split(/\s+/)
    if (keyword !== 'nameserver' || address === undefined) continue
    const family = isIP(address)
    if (family === 4) v4.push(address)
    else if (family === 6) v6.push(address)
  }
  return { v4, v6 }
}

/** The facts the rule builder needs, read from this network namespace and /etc/resolv.conf. */
export function readCaptureHost(config: CaptureConfig, resolvConf = '/etc/resolv.conf'): CaptureHost {
  const ipv6 = ipv6InUse(config)
  if (!config.redirectDns || config.captureAllDns) return { ipv6, dnsServersV4: [], dnsServersV6: [] }
  let text = ''
  try {
    text = readFileSync(resolvConf, 'utf8')
  } catch (error) {
    throw new CaptureError(`--redirect-dns: cannot read ${resolvConf}: ${(error as Error).message}`)
  }
  const servers = resolvConfServers(text)
  return { ipv6, dnsServersV4: servers.v4, dnsServersV6: servers.v6 }
}
