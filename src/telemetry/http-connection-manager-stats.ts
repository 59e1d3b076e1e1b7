// Envoy's HTTP connection manager stats (http.<stat_prefix>.downstream_rq_*): an observer that counts each finished request in the proxy's SharedCounters.

import type { CounterBlock, SharedCounters } from '../shared/shared-counters.ts'
import type { RequestRecord } from './request-record.ts'
import type { TrafficObserver } from './traffic-observer.ts'

/**
 * Cells of a listener's `stats|http|<listener name>` block, under Envoy's names (docs: "HTTP connection
 * manager statistics"); 1xx..5xx count the status sent downstream, whoever answered.
 */
export const HttpConnectionManagerStat = {
  downstream_rq_total: 0,
  downstream_rq_http1_total: 1,
  downstream_rq_http2_total: 2,
  downstream_rq_completed: 3,
  downstream_rq_1xx: 4,
  downstream_rq_2xx: 5,
  downstream_rq_3xx: 6,
  downstream_rq_4xx: 7,
  downstream_rq_5xx: 8,
} as const

export type HttpConnectionManagerStatName = keyof typeof HttpConnectionManagerStat

function blockKey(listenerName: string): string {
  return `stats|http|${listenerName}`
}

/** Told of every request's end; a listener's block is found once per worker and kept by name. */
export class HttpConnectionManagerStats implements TrafficObserver {
  readonly name = 'envoy-http-stats'
  readonly #counters: SharedCounters
  readonly #blocks = new Map<string, CounterBlock>()

  constructor(counters: SharedCounters) {
    this.#counters = counters
  }

  requestEnded(record: RequestRecord): void {
    const name = record.listenerName
    let block = this.#blocks.get(name)
    if (block === undefined) {
      block = this.#counters.block(blockKey(name))
      this.#blocks.set(name, block)
    }
    const { cells, base } = block
    Atomics.add(cells, base, 1)
    Atomics.add(cells, base + (record.http2 ? 2 : 1), 1)
    const klass = (record.responseStatus / 100) | 0
    // No status went down (the client left first, or the stream was reset): not completed.
    if (klass < 1 || klass > 5) return
    Atomics.add(cells, base + HttpConnectionManagerStat.downstream_rq_completed, 1)
    Atomics.add(cells, base + HttpConnectionManagerStat.downstream_rq_completed + klass, 1)
  }
}

/** A listener's HTTP counts over every worker; zeros when none was counted. */
export function readHttpConnectionManagerStats(
  counters: SharedCounters,
  listenerName: string,
): Record<HttpConnectionManagerStatName, number> {
  const block = counters.find(blockKey(listenerName))
  const values = {} as Record<HttpConnectionManagerStatName, number>
  for (const [name, cell] of Object.entries(HttpConnectionManagerStat) as [
    HttpConnectionManagerStatName,
    number,
  ][]) {
    values[name] = block === undefined ? 0 : Atomics.load(block.cells, block.base + cell)
  }
  return values
}
