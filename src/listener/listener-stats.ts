// Envoy's listener stats (downstream_cx_*) and its tls_inspector / http_inspector outcomes, counted in the proxy's SharedCounters.

import type { CounterBlock, SharedCounters } from '../shared/shared-counters.ts'
import { decrementToZero } from '../shared/shared-counters.ts'
import type { Detection } from './detect-protocol.ts'

/** Cells of a listener's `stats|listener|<address:port>` block, under Envoy's names (docs: "Listener statistics"). */
export const ListenerStat = {
  downstream_cx_total: 0,
  downstream_cx_active: 1,
  downstream_cx_destroy: 2,
  /** Refused at accept by the listener's connection limit (`limits.maxConnectionsPerListener`). */
  downstream_cx_overflow: 3,
  /** Refused at accept by the proxy-wide connection limit (`limits.maxConnections`). */
  downstream_global_cx_overflow: 4,
  /** Closed at accept by the overload manager's reject_incoming_connections. */
  downstream_cx_overload_reject: 5,
} as const

export type ListenerStatName = keyof typeof ListenerStat

/**
 * What protocol detection found, under the names of the listener filters Istio puts first on a
 * sidecar's listeners: tls_inspector (source/extensions/filters/listener/tls_inspector) and
 * http_inspector (source/extensions/filters/listener/http_inspector). Envoy's are not per listener.
 */
export const DetectionStat = {
  'tls_inspector.tls_found': 0,
  'tls_inspector.tls_not_found': 1,
  'tls_inspector.sni_found': 2,
  'tls_inspector.sni_not_found': 3,
  'tls_inspector.alpn_found': 4,
  'tls_inspector.alpn_not_found': 5,
  'http_inspector.http11_found': 6,
  'http_inspector.http2_found': 7,
  'http_inspector.http_not_found': 8,
} as const

export type DetectionStatName = keyof typeof DetectionStat

/** What a sniffer looked for: `detect` runs both inspectors, `tls` and `tls-or-http` the TLS one, `http` neither. */
export type InspectedMode = 'detect' | 'tls' | 'http' | 'tls-or-http'

function listenerKey(address: string, port: number): string {
  return `stats|listener|${address}:${port}`
}

const detectionKey = 'stats|inspectors'

/** Cell 0: connections open on every listener of every worker (counted only while `maxConnections` is set). */
const globalConnectionsKey = 'limits|connections'

/** The connection caps of bootstrap `limits`; 0 means unlimited. */
export interface ConnectionLimits {
  readonly maxConnectionsPerListener: number
  readonly maxConnections: number
}

/**
 * One listener's connection counts, shared by every worker accepting on its port, and the admission of
 * each new connection under Envoy's listener connection limit and global_downstream_max_connections:
 * a connection above either is refused at accept (the open ones are untouched) and counted.
 */
export class ListenerStats {
  readonly #block: CounterBlock
  readonly #global: CounterBlock
  readonly #limits: ConnectionLimits

  constructor(counters: SharedCounters, address: string, port: number, limits: ConnectionLimits) {
    this.#block = counters.block(listenerKey(address, port))
    this.#global = counters.block(globalConnectionsKey)
    this.#limits = limits
  }

  /** Counts a new connection in; false (counted as an overflow) when a limit refuses it. */
  admit(): boolean {
    const { cells, base } = this.#block
    const active = base + ListenerStat.downstream_cx_active
    const perListener = this.#limits.maxConnectionsPerListener
    // Claim first, then check: two workers racing for the last slot cannot both win.
    if (Atomics.add(cells, active, 1) >= perListener && perListener > 0) {
      Atomics.sub(cells, active, 1)
      Atomics.add(cells, base + ListenerStat.downstream_cx_overflow, 1)
      return false
    }
    const total = this.#limits.maxConnections
    if (total > 0) {
      const global = this.#global
      if (Atomics.add(global.cells, global.base, 1) >= total) {
        Atomics.sub(global.cells, global.base, 1)
        Atomics.sub(cells, active, 1)
        Atomics.add(cells, base + ListenerStat.downstream_global_cx_overflow, 1)
        return false
      }
    }
    Atomics.add(cells, base + ListenerStat.downstream_cx_total, 1)
    return true
  }

  /** Counts a connection the overload manager closed at accept (it was never admitted). */
  overloadRejected(): void {
    Atomics.add(this.#block.cells, this.#block.base + ListenerStat.downstream_cx_overload_reject, 1)
  }

  closed(): void {
    const { cells, base } = this.#block
    decrementToZero(cells, base + ListenerStat.downstream_cx_active)
    Atomics.add(cells, base + ListenerStat.downstream_cx_destroy, 1)
    if (this.#limits.maxConnections > 0) decrementToZero(this.#global.cells, this.#global.base)
  }

  /** Connections open now on this listener, over every worker (downstream_cx_active). */
  get active(): number {
    const { cells, base } = this.#block
    return Atomics.load(cells, base + ListenerStat.downstream_cx_active)
  }
}

/**
 * Counts each sniffed connection once, as the inspectors would: tls_inspector decides TLS or not (and,
 * for TLS, whether the ClientHello had SNI and ALPN); http_inspector runs only on what is not TLS
 * (http_inspector.cc skips a connection whose transport protocol was already detected).
 */
export class DetectionStats {
  readonly #block: CounterBlock

  constructor(counters: SharedCounters) {
    this.#block = counters.block(detectionKey)
  }

  count(mode: InspectedMode, detection: Detection): void {
    if (mode === 'http') return
    const protocol = detection.protocol
    const hello = detection.clientHello
    if (protocol === 'tls' && hello !== undefined) {
      this.#add('tls_inspector.tls_found')
      this.#add(hello.sni === undefined ? 'tls_inspector.sni_not_found' : 'tls_inspector.sni_found')
      this.#add(hello.alpn.length === 0 ? 'tls_inspector.alpn_not_found' : 'tls_inspector.alpn_found')
      return
    }
    this.#add('tls_inspector.tls_not_found')
    if (mode !== 'detect') return
    this.#add(
      protocol === 'http1'
        ? 'http_inspector.http11_found'
        : protocol === 'http2'
          ? 'http_inspector.http2_found'
          : 'http_inspector.http_not_found',
    )
  }

  #add(stat: DetectionStatName): void {
    Atomics.add(this.#block.cells, this.#block.base + DetectionStat[stat], 1)
  }
}

/** A listener's counts over every worker; zeros when none was counted. */
export function readListenerStats(
  counters: SharedCounters,
  address: string,
  port: number,
): Record<ListenerStatName, number> {
  return read(counters.find(listenerKey(address, port)), ListenerStat)
}

/** The inspectors' outcomes over every worker and listener. */
export function readDetectionStats(counters: SharedCounters): Record<DetectionStatName, number> {
  return read(counters.find(detectionKey), DetectionStat)
}

function read<Name extends string>(
  block: CounterBlock | undefined,
  cells: Readonly<Record<Name, number>>,
): Record<Name, number> {
  const values = {} as Record<Name, number>
  for (const [name, cell] of Object.entries(cells) as [Name, number][]) {
    values[name] = block === undefined ? 0 : Atomics.load(block.cells, block.base + cell)
  }
  return values
}
