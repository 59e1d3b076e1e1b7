// The bootstrap's `listeners.dns`: Istio's DNS proxy (pilot-agent's ISTIO_META_DNS_CAPTURE on 127.0.0.1:15053) and its address auto allocation.

import { isIP } from 'node:net'
import { z } from 'zod'

/**
 * `listeners.dns`. `enabled` absent means: on exactly when `capture` is not `none` (Istio's agent serves DNS
 * when the pod's DNS is captured); `true` or `false` decides outright. `autoAllocate` is
 * ISTIO_META_DNS_AUTO_ALLOCATE: ServiceEntry hosts without `addresses` get one from 240.240.0.0/16 and
 * 2001:2::/48 while the DNS proxy runs (recent Istio allocates them by default).
 */
export const dnsProxySchema = z
  .strictObject({
    port: z
      .number()
      .refine((port) => Number.isInteger(port) && port >= 0 && port <= 65535, {
        message: 'port number must be in the range 0..65535',
      })
      .default(15053),
    /** Istio binds localhost: the app's captured port-53 traffic is redirected there. */
    address: z
      .string()
      .refine((address) => isIP(address) !== 0, { message: 'is not a valid IP address' })
      .default('127.0.0.1'),
    enabled: z.boolean().optional(),
    autoAllocate: z.boolean().default(true),
  })
  .prefault({})

export type DnsProxyListener = z.infer<typeof dnsProxySchema>
