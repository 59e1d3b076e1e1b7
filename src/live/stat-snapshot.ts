// What one worker thread answers for `outrigger stat` and the dashboard's history: plain, mergeable data (counts and encoded histograms).

import type { TrafficDirection } from '../telemetry/request-record.ts'
import type { LatencyQuantiles, LiveGrouping } from './live-api.ts'

/** One row of one worker over a window: sums, and its latencies as an hdr histogram (compressed base64). */
export interface StatRowSnapshot {
  readonly name: string
  readonly direction: TrafficDirection
  readonly requests: number
  readonly successes: number
  /** hdr-histogram-js `encodeIntoCompressedBase64` of the window's latencies in µs; null with no request. */
  readonly latencyUs: string | null
  readonly tcpOpenConnections: number
  readonly tcpBytesReceived: number
  readonly tcpBytesSent: number
}

/** A worker's answer to the 'live-stat' topic; worker 0 merges every worker's before computing rates and quantiles. */
export interface StatSnapshot {
  readonly by: LiveGrouping
  readonly windowSeconds: number
  readonly rows: readonly StatRowSnapshot[]
}

/** One second of one row of one worker. */
export interface HistoryPointSnapshot {
  /** Unix seconds at the end of that second. */
  readonly t: number
  readonly requests: number
  readonly successes: number
  readonly latencyMs: LatencyQuantiles | null
}

/** A worker's answer to the 'live-history' topic. */
export interface HistorySnapshot {
  readonly by: LiveGrouping
  readonly rows: readonly {
    readonly name: string
    readonly direction: TrafficDirection
    readonly points: readonly HistoryPointSnapshot[]
  }[]
}

/** What worker 0 asks the others on 'live-stat'. */
export interface StatQuery {
  readonly by: LiveGrouping
  readonly windowSeconds: number
}

/** What worker 0 asks the others on 'live-history'. */
export interface HistoryQuery {
  readonly by: LiveGrouping
  readonly seconds: number
}
