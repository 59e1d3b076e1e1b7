// The HTTP connection manager's limit stats (Envoy's names under http.<stat_prefix>.): timeouts, codec rejections and HTTP/2 abuse, counted in the proxy's SharedCounters.

import type { CounterBlock, SharedCounters } from '../shared/shared-counters.ts'

/**
 * Cells of a listener's `stats|http-limits|<listener name>` block, under Envoy's names (docs: "HTTP
 * connection manager statistics" and "HTTP/2 codec statistics").
 */
export const HttpLimitStat = {
  /** A request rejected by the codec: too many or too large headers (431), a malformed request. */
  downstream_cx_protocol_error: 0,
  /** A connection closed because its first request's headers did not arrive in time. */
  downstream_rq_header_timeout: 1,
  /** A request ended by the stream idle timeout (408, or a reset once its response started). */
  downstream_rq_idle_timeout: 2,
  /** A connection closed by the idle timeout (no request in flight). */
  downstream_cx_idle_timeout: 3,
  /** A request ended by its route's max_stream_duration. */
  downstream_rq_max_duration_reached: 4,
  /** An HTTP/2 connection closed for too many premature resets (CVE-2023-44487). */
  downstream_rq_too_many_premature_resets: 5,
  /** An HTTP/2 connection closed for a PING or SETTINGS flood. */
  'http2.outbound_control_flood': 6,
  /** An HTTP/2 connection closed for too many invalid frames or refused streams. */
  'http2.rx_messaging_error': 7,
  /** An HTTP/2 stream refused for a header list above the limit. */
  'http2.header_overflow': 8,
  /**
   * A TLS-terminating listener's failed handshakes (garbage instead of a ClientHello, a client that aborts or
   * stalls mid-handshake) and completed ones: Envoy's `listener.<address>.ssl.connection_error` and
   * `ssl.handshake`, rendered under the listener's prefix.
   */
  'ssl.connection_error': 9,
  'ssl.handshake': 10,
  /** A request answered 503 `envoy overloaded` by the overload manager's stop_accepting_requests. */
  downstream_rq_overload_close: 11,
} as const

export type HttpLimitStatName = keyof typeof HttpLimitStat

function blockKey(listenerName: string): string {
  return `stats|http-limits|${listenerName}`
}

/** Counts limit events of every listener; a listener's block is found at its first event and kept by name. */
export class HttpLimitStats {
  readonly #counters: SharedCounters
  readonly #blocks = new Map<string, CounterBlock>()

  constructor(counters: SharedCounters) {
    this.#counters = counters
  }

  count(listenerName: string, stat: HttpLimitStatName): void {
    let block = this.#blocks.get(listenerName)
    if (block === undefined) {
      block = this.#counters.block(blockKey(listenerName))
      this.#blocks.set(listenerName, block)
    }
    Atomics.add(block.cells, block.base + HttpLimitStat[stat], 1)
  }
}

/** A listener's limit counts over every worker; zeros when none was counted. */
export function readHttpLimitStats(
  counters: SharedCounters,
  listenerName: string,
): Record<HttpLimitStatName, number> {
  const block = counters.find(blockKey(listenerName))
  const values = {} as Record<HttpLimitStatName, number>
  for (const [name, cell] of Object.entries(HttpLimitStat) as [HttpLimitStatName, number][]) {
    values[name] = block === undefined ? 0 : Atomics.load(block.cells, block.base + cell)
  }
  return values
}
