// One upstream address with its undici connection pool; shared by every cluster that lists it.

import { Pool } from 'undici'

export interface PoolSettings {
  readonly connectTimeoutMs: number
}

export class UpstreamEndpoint {
  readonly address: string
  readonly port: number
  /** `address:port`, as Envoy's %UPSTREAM_HOST% prints it. */
  readonly hostPort: string
  readonly pool: Pool
  /** Requests dispatched and not yet finished (for least-request LB and /clusters). */
  activeRequests = 0
  totalRequests = 0
  connectFailures = 0

  constructor(address: string, port: number, settings: PoolSettings) {
    this.address = address
    this.port = port
    const host = address.includes(':') ? `[${address}]` : address
    this.hostPort = `${host}:${port}`
    this.pool = new Pool(`http://${this.hostPort}`, {
      connectTimeout: settings.connectTimeoutMs,
      // The route timeout governs; undici's own defaults (300 s) would cut long streams.
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 3_600_000,
      pipelining: 1,
    })
  }

  /** Closes the pool once its in-flight requests finish. */
  async close(): Promise<void> {
    await this.pool.close()
  }
}
