// The bootstrap's `dns` settings when it has no `dns` section, as plain data (dns.test.ts checks them against the schema's defaults).

import type { DnsSettings } from './dns.ts'

/** The settings when the bootstrap has no `dns` section. */
export const defaultDnsSettings: DnsSettings = { servers: [], refreshRate: '60s', lookupFamily: 'V4_ONLY' }
