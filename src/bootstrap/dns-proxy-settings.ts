// Whether the DNS proxy runs, and where, from the validated bootstrap (no schema needed here).

import type { DnsProxyListener } from './dns-proxy.ts'

/** The DNS proxy as it runs: where it listens and whether it allocates addresses. */
export interface DnsProxySettings {
  readonly address: string
  readonly port: number
  readonly autoAllocate: boolean
}

/** The DNS proxy's settings, or undefined when it does not run (see `dnsProxySchema`). */
export function dnsProxySettings(bootstrap: {
  readonly capture: string
  readonly listeners: { readonly dns: DnsProxyListener }
}): DnsProxySettings | undefined {
  const { enabled, address, port, autoAllocate } = bootstrap.listeners.dns
  if (!(enabled ?? bootstrap.capture !== 'none')) return undefined
  return { address, port, autoAllocate }
}
