// The busiest (direction, method, authority, path) keys of the last minute, per second in bounded Space-Saving tables: the observer behind `outrigger top`.

import type { RequestRecord, TrafficDirection } from '../telemetry/request-record.ts'
import type { TrafficObserver } from '../telemetry/traffic-observer.ts'
import { type HeavyHitterSummary, mergeSummaries } from './heavy-hitter-summary.ts'
import { isSuccess } from './response-class.ts'
import { SpaceSavingTable } from './space-saving.ts'

/** Keys each second's table (and every merged summary) keeps. */
export const HEAVY_HITTERS_CAPACITY = 200
/** The longest window a report covers: one table a second is kept for this many seconds. */
export const MAX_TOP_WINDOW_SECONDS = 60

/**
 * A ring of `MAX_TOP_WINDOW_SECONDS` tables of `HEAVY_HITTERS_CAPACITY` keys, one per wall-clock second
 * (a table is reset when its slot comes round again). A request counts in its second's table at its end;
 * a window's summary merges the tables of its seconds. Memory is bounded by ring × capacity entries
 * whatever the traffic: paths never become unbounded keys, nor metric labels.
 */
export class HeavyHitters implements TrafficObserver {
  readonly name = 'live-top'
  readonly #ring: (SpaceSavingTable | undefined)[] = new Array(MAX_TOP_WINDOW_SECONDS).fill(undefined)
  /** performance.now()'s origin, so a record's end becomes wall-clock time with one addition. */
  readonly #origin = performance.timeOrigin

  requestEnded(record: RequestRecord): void {
    this.count(
      record.direction,
      record.method,
      record.authority,
      record.path,
      isSuccess(record),
      record.endTime - record.startTime,
      this.#origin + record.endTime,
    )
  }

  /** Counts one request that ended at wall-clock `at` ms after `latencyMs`. */
  count(
    direction: TrafficDirection,
    method: string,
    authority: string,
    path: string,
    success: boolean,
    latencyMs: number,
    at: number,
  ): void {
    const second = Math.floor(at / 1000)
    const slot = second % MAX_TOP_WINDOW_SECONDS
    let table = this.#ring[slot]
    if (table === undefined) {
      table = new SpaceSavingTable(HEAVY_HITTERS_CAPACITY)
      this.#ring[slot] = table
    }
    if (table.period !== second) table.reset(second)
    table.add(direction, method, authority, path, success, latencyMs, at)
  }

  /**
   * The merged tables of the `windowSeconds` seconds up to `nowMs` (wall clock), the current second
   * included; the window is clamped to 1..MAX_TOP_WINDOW_SECONDS.
   */
  summary(windowSeconds: number, nowMs = this.#origin + performance.now()): HeavyHitterSummary {
    const window = clampWindow(windowSeconds)
    const now = Math.floor(nowMs / 1000)
    const tables: HeavyHitterSummary[] = []
    for (const table of this.#ring)
      if (table !== undefined && table.period > now - window && table.period <= now)
        tables.push(table.summary())
    return mergeSummaries(tables, HEAVY_HITTERS_CAPACITY)
  }

  /** Entries held across the ring (for the bound's test): at most ring × capacity. */
  get entriesHeld(): number {
    let n = 0
    for (const table of this.#ring) n += table?.size ?? 0
    return n
  }
}

/** A window in whole seconds within what the ring keeps. */
export function clampWindow(seconds: number): number {
  if (!Number.isFinite(seconds)) return MAX_TOP_WINDOW_SECONDS
  return Math.min(MAX_TOP_WINDOW_SECONDS, Math.max(1, Math.round(seconds)))
}
