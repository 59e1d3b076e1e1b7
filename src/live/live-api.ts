// The live view's admin API: the JSON that admin's /live/* pages and /tap answer, which `outrigger stat|top|tap` and the dashboard read.

import type { TrafficDirection } from '../telemetry/request-record.ts'

/** What `outrigger stat --by` groups rows by. */
export type LiveGrouping = 'service' | 'route' | 'cluster' | 'listener'

/** Latency quantiles in milliseconds, from a windowed histogram. */
export interface LatencyQuantiles {
  readonly p50: number
  readonly p95: number
  readonly p99: number
}

/**
 * One row of `outrigger stat`: a service, route, cluster or listener over the window. A row has HTTP
 * numbers, TCP numbers, or both (a service reached over HTTP and TCP).
 */
export interface StatRow {
  /** The service FQDN, the route (`<VirtualService namespace/name>/<http[] name or index>`), cluster or listener name. */
  readonly name: string
  readonly direction: TrafficDirection
  /** HTTP requests that ended in the window. */
  readonly requests: number
  readonly requestsPerSecond: number
  /** Share of those requests that succeeded (0..1; docs/live.md says which count), null with none. */
  readonly successRate: number | null
  /** Null with no request in the window. */
  readonly latencyMs: LatencyQuantiles | null
  /** TCP connections open now. */
  readonly tcpOpenConnections: number
  /** TCP bytes per second over the window, received from and sent to the downstream. */
  readonly tcpBytesReceivedPerSecond: number
  readonly tcpBytesSentPerSecond: number
}

/** GET /live/stat?by=service|route|cluster|listener&window=10s (admin). */
export interface StatReport {
  readonly by: LiveGrouping
  readonly windowSeconds: number
  /** ISO time of the report. */
  readonly at: string
  readonly rows: readonly StatRow[]
}

/** One point per second of a row's history, for the dashboard's charts. */
export interface HistoryPoint {
  /** Unix seconds at the end of that second. */
  readonly t: number
  readonly requestsPerSecond: number
  readonly successRate: number | null
  readonly latencyMs: LatencyQuantiles | null
}

/** GET /live/history?by=service|cluster&seconds=N (admin): the last N seconds (at most the kept history), per row. */
export interface HistoryReport {
  readonly by: LiveGrouping
  readonly rows: readonly {
    readonly name: string
    readonly direction: TrafficDirection
    readonly points: readonly HistoryPoint[]
  }[]
}

/** One row of `outrigger top`: a (method, authority, path) of the heavy-hitters table over the window. */
export interface TopRow {
  readonly direction: TrafficDirection
  readonly method: string
  readonly authority: string
  /** The path without its query, cut to a bounded length. */
  readonly path: string
  readonly count: number
  /** Space-Saving's overestimate bound for `count` (0 when the row was never evicted and counted exactly). */
  readonly countError: number
  readonly successRate: number
  /** Fastest, slowest and latest request of the row in the window, ms (Linkerd's top: Best, Worst, Last). */
  readonly latencyMs: { readonly best: number; readonly worst: number; readonly last: number }
}

/** GET /live/top?window=10s&limit=N (admin). */
export interface TopReport {
  readonly windowSeconds: number
  readonly at: string
  readonly rows: readonly TopRow[]
}

/** One tapped request (GET /tap streams these as NDJSON lines, or as SSE `data:` with `?format=sse`). */
export interface TapEvent {
  /** ISO time the request started. */
  readonly time: string
  readonly direction: TrafficDirection
  /** The downstream's mTLS principal (spiffe://…), or '' when not mTLS. */
  readonly peer: string
  readonly method: string
  readonly authority: string
  /** Path and query as routed. */
  readonly path: string
  readonly protocol: string
  /** 0 when no response was sent. */
  readonly status: number
  /** Envoy's %RESPONSE_FLAGS% ('-' when none). */
  readonly responseFlags: string
  readonly grpcStatus: string | undefined
  readonly durationMs: number
  readonly bytesReceived: number
  readonly bytesSent: number
  /** The upstream host:port of the last attempt, or ''. */
  readonly upstreamHost: string
  readonly cluster: string
  readonly route: string
  readonly requestId: string
  /** The worker thread that served it (0 with one worker). */
  readonly worker: number
}
