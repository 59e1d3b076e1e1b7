// Each worker thread's resource pressures and action states in the SharedCounters table, read by admin as Envoy's overload.* gauges.

import {
  type OverloadAction,
  type OverloadResource,
  overloadActionNames,
  overloadResourceNames,
} from '../protocol/overload.ts'
import type { CounterBlock, SharedCounters } from '../shared/shared-counters.ts'

/** Cells of a worker's `overload|worker|<index>` block: pressures and action states in 1/10000. */
const cellOf: Readonly<Record<OverloadResource | OverloadAction, number>> = {
  heap: 0,
  eventLoopDelay: 1,
  stopAcceptingRequests: 2,
  rejectIncomingConnections: 3,
  disableHttpKeepalive: 4,
}

const scale = 10_000

function workerKey(worker: number): string {
  return `overload|worker|${worker}`
}

/** Where one thread's overload manager writes what it sampled. */
export class OverloadStatsWriter {
  readonly #block: CounterBlock

  constructor(counters: SharedCounters, worker: number) {
    this.#block = counters.block(workerKey(worker))
  }

  set(what: OverloadResource | OverloadAction, value: number): void {
    // Int32 cells: a pressure far past saturation (a loop blocked for minutes) is capped, not wrapped.
    const cell = Math.min(Math.round(value * scale), 2 ** 31 - 1)
    Atomics.store(this.#block.cells, this.#block.base + cellOf[what], cell)
  }
}

export interface OverloadStat {
  readonly name: string
  readonly value: number
}

/**
 * Envoy's overload gauges over every worker: `overload.<resource>.pressure` (percent) and, per action,
 * `overload.<action>.active` (1 when saturated) and `.scale_percent`; each is the highest worker's, as
 * the proxy is overloaded where any thread is.
 */
export function readOverloadStats(counters: SharedCounters, workers: number): OverloadStat[] {
  const highest = (what: OverloadResource | OverloadAction): number => {
    let max = 0
    for (let worker = 0; worker < workers; worker++) {
      const block = counters.find(workerKey(worker))
      if (block !== undefined) max = Math.max(max, Atomics.load(block.cells, block.base + cellOf[what]))
    }
    return max / scale
  }
  const stats: OverloadStat[] = []
  for (const [resource, name] of Object.entries(overloadResourceNames) as [OverloadResource, string][]) {
    stats.push({ name: `overload.${name}.pressure`, value: Math.round(highest(resource) * 100) })
  }
  for (const [action, name] of Object.entries(overloadActionNames) as [OverloadAction, string][]) {
    const state = highest(action)
    stats.push({ name: `overload.${name}.active`, value: state >= 1 ? 1 : 0 })
    stats.push({ name: `overload.${name}.scale_percent`, value: Math.round(state * 100) })
  }
  return stats
}
