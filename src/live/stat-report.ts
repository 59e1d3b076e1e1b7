// Merges the workers' live snapshots into admin's StatReport and HistoryReport: counts summed, histograms added, then rates and quantiles.

import { decodeFromCompressedBase64, type Histogram } from 'hdr-histogram-js'
import type { TrafficDirection } from '../telemetry/request-record.ts'
import type {
  HistoryPoint,
  HistoryReport,
  LatencyQuantiles,
  LiveGrouping,
  StatReport,
  StatRow,
} from './live-api.ts'
import type { HistoryPointSnapshot, HistorySnapshot, StatSnapshot } from './stat-snapshot.ts'
import { mergeHistogram, quantilesMs } from './windowed-histogram.ts'

interface MergedStatRow {
  name: string
  direction: TrafficDirection
  requests: number
  successes: number
  latency: Histogram | undefined
  tcpOpenConnections: number
  tcpBytesReceived: number
  tcpBytesSent: number
}

/** Rows in a stable order: inbound first, then by name. */
function byDirectionThenName(
  a: { direction: TrafficDirection; name: string },
  b: { direction: TrafficDirection; name: string },
): number {
  if (a.direction !== b.direction) return a.direction === 'inbound' ? -1 : 1
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0
}

/** Rounds to the microsecond, so that the JSON reads as milliseconds with three decimals. */
function roundMs(q: LatencyQuantiles | null): LatencyQuantiles | null {
  if (q === null) return null
  const r = (ms: number) => Math.round(ms * 1000) / 1000
  return { p50: r(q.p50), p95: r(q.p95), p99: r(q.p99) }
}

/** One StatReport from every worker's snapshot of the same grouping and window. */
export function statReport(
  by: LiveGrouping,
  windowSeconds: number,
  snapshots: readonly StatSnapshot[],
  at: Date,
): StatReport {
  const merged = new Map<string, MergedStatRow>()
  for (const snapshot of snapshots)
    for (const row of snapshot.rows) {
      const key = `${row.direction} ${row.name}`
      let into = merged.get(key)
      if (into === undefined) {
        into = {
          name: row.name,
          direction: row.direction,
          requests: 0,
          successes: 0,
          latency: undefined,
          tcpOpenConnections: 0,
          tcpBytesReceived: 0,
          tcpBytesSent: 0,
        }
        merged.set(key, into)
      }
      into.requests += row.requests
      into.successes += row.successes
      into.tcpOpenConnections += row.tcpOpenConnections
      into.tcpBytesReceived += row.tcpBytesReceived
      into.tcpBytesSent += row.tcpBytesSent
      if (row.latencyUs !== null) {
        into.latency ??= mergeHistogram()
        into.latency.add(decodeFromCompressedBase64(row.latencyUs))
      }
    }
  const rows: StatRow[] = [...merged.values()].sort(byDirectionThenName).map((row) => ({
    name: row.name,
    direction: row.direction,
    requests: row.requests,
    requestsPerSecond: row.requests / windowSeconds,
    successRate: row.requests === 0 ? null : row.successes / row.requests,
    latencyMs: row.latency === undefined ? null : roundMs(quantilesMs(row.latency)),
    tcpOpenConnections: row.tcpOpenConnections,
    tcpBytesReceivedPerSecond: row.tcpBytesReceived / windowSeconds,
    tcpBytesSentPerSecond: row.tcpBytesSent / windowSeconds,
  }))
  return { by, windowSeconds, at: at.toISOString(), rows }
}

interface MergedPoint {
  requests: number
  successes: number
  /** Request-weighted sums of each worker's quantiles, and the requests they weigh. */
  p50: number
  p95: number
  p99: number
  weighed: number
}

/**
 * One HistoryReport from every worker's history: points of the same second are merged (requests and
 * successes summed exactly; a second's quantiles are the request-weighted mean of the workers', an
 * approximation: a worker keeps a second's quantiles, not its histogram, for ten minutes).
 */
export function historyReport(by: LiveGrouping, snapshots: readonly HistorySnapshot[]): HistoryReport {
  const rows = new Map<
    string,
    { name: string; direction: TrafficDirection; points: Map<number, MergedPoint> }
  >()
  for (const snapshot of snapshots)
    for (const row of snapshot.rows) {
      const key = `${row.direction} ${row.name}`
      let into = rows.get(key)
      if (into === undefined) {
        into = { name: row.name, direction: row.direction, points: new Map() }
        rows.set(key, into)
      }
      for (const point of row.points) addPoint(into.points, point)
    }
  return {
    by,
    rows: [...rows.values()].sort(byDirectionThenName).map((row) => ({
      name: row.name,
      direction: row.direction,
      points: [...row.points.entries()].sort((a, b) => a[0] - b[0]).map(([t, p]) => historyPoint(t, p)),
    })),
  }
}

function addPoint(points: Map<number, MergedPoint>, point: HistoryPointSnapshot): void {
  let into = points.get(point.t)
  if (into === undefined) {
    into = { requests: 0, successes: 0, p50: 0, p95: 0, p99: 0, weighed: 0 }
    points.set(point.t, into)
  }
  into.requests += point.requests
  into.successes += point.successes
  if (point.latencyMs !== null) {
    into.p50 += point.latencyMs.p50 * point.requests
    into.p95 += point.latencyMs.p95 * point.requests
    into.p99 += point.latencyMs.p99 * point.requests
    into.weighed += point.requests
  }
}

function historyPoint(t: number, p: MergedPoint): HistoryPoint {
  return {
    t,
    requestsPerSecond: p.requests,
    successRate: p.requests === 0 ? null : p.successes / p.requests,
    latencyMs:
      p.weighed === 0
        ? null
        : roundMs({ p50: p.p50 / p.weighed, p95: p.p95 / p.weighed, p99: p.p99 / p.weighed }),
  }
}
