// GET /live/top's answer: the heavy hitters of a window, this worker's and the others', as a TopReport.

import { type HeavyHitter, type HeavyHitterSummary, mergeSummaries } from './heavy-hitter-summary.ts'
import { clampWindow, HEAVY_HITTERS_CAPACITY, type HeavyHitters } from './heavy-hitters.ts'
import type { TopReport, TopRow } from './live-api.ts'

/** What worker 0 asks the other workers on topic 'live-top'. */
export interface TopQuery {
  readonly windowSeconds: number
}

/** A worker's answer to a 'live-top' query: its summary of the window, or undefined with live off. */
export function answerTopQuery(
  heavyHitters: HeavyHitters | undefined,
  query: unknown,
): HeavyHitterSummary | undefined {
  const windowSeconds = (query as Partial<TopQuery> | undefined)?.windowSeconds
  if (heavyHitters === undefined || typeof windowSeconds !== 'number') return undefined
  return heavyHitters.summary(windowSeconds)
}

/**
 * The report of `windowSeconds` from this worker's summary and the other workers' (merged as
 * Space-Saving summaries), busiest first, at most `limit` rows.
 */
export function topReport(
  windowSeconds: number,
  own: HeavyHitterSummary,
  others: readonly HeavyHitterSummary[],
  limit: number,
  at = new Date(),
): TopReport {
  const summary = others.length === 0 ? own : mergeSummaries([own, ...others], HEAVY_HITTERS_CAPACITY)
  return {
    windowSeconds: clampWindow(windowSeconds),
    at: at.toISOString(),
    rows: summary.entries.slice(0, Math.max(0, limit)).map(topRow),
  }
}

function topRow(e: HeavyHitter): TopRow {
  return {
    direction: e.direction,
    method: e.method,
    authority: e.authority,
    path: e.path,
    count: e.count,
    countError: e.countError,
    // Over the requests the key was seen for (exact), not its estimated count.
    successRate: e.successes / Math.max(1, e.count - e.countError),
    latencyMs: { best: e.bestMs, worst: e.worstMs, last: e.lastMs },
  }
}
