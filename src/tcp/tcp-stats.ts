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

const byOwner = new WeakMap<object, TcpConnectionStats>()

/**
 * The TCP counters of a cluster or an endpoint, created on first use. Kept beside their owner rather
 * than in it, so HTTP-only clusters carry nothing; they live as long as the owner does (across reloads).
 */
export function tcpStatsOf(owner: object): TcpConnectionStats {
  let stats = byOwner.get(owner)
  if (stats === undefined) {
    stats = new TcpConnectionStats()
    byOwner.set(owner, stats)
  }
  return stats
}

/** The counters of `owner` if it ever had a TCP connection, else undefined (reads never create). */
export function peekTcpStats(owner: object): TcpConnectionStats | undefined {
  return byOwner.get(owner)
}
