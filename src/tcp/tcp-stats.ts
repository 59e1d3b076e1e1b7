// Counters of the opaque TCP connections the proxy opens, per cluster and per endpoint, for /clusters.

/** Envoy's cx_active, cx_total and cx_connect_fail, counting only connections opened by the TCP proxy. */
export class TcpConnectionStats {
  /** Upstream connections connecting or open. */
  active = 0
  /** Upstream connections attempted. */
  total = 0
  /** Attempts refused, unreachable or timed out. */
  connectFailures = 0
}

/**
 * The TCP counters of every cluster and endpoint that had a TCP connection; one per proxy, owned by the
 * runtime. Kept beside their owner rather than in it, so HTTP-only clusters carry nothing; they live as
 * long as the owner does (across reloads).
 */
export class TcpStatsTable {
  readonly #byOwner = new WeakMap<object, TcpConnectionStats>()

  /** The counters of a cluster or an endpoint, created on first use. */
  of(owner: object): TcpConnectionStats {
    let stats = this.#byOwner.get(owner)
    if (stats === undefined) {
      stats = new TcpConnectionStats()
      this.#byOwner.set(owner, stats)
    }
    return stats
  }

  /** The counters of `owner` if it ever had a TCP connection, else undefined (reads never create). */
  peek(owner: object): TcpConnectionStats | undefined {
    return this.#byOwner.get(owner)
  }
}
