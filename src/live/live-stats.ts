// The live view's numbers (`outrigger stat`, the dashboard's charts): windowed requests, successes, latencies and TCP bytes per service, route, cluster and listener.

import type { RequestRecord, TrafficDirection } from '../telemetry/request-record.ts'
import type { TcpRecord } from '../telemetry/tcp-record.ts'
import type { TrafficObserver } from '../telemetry/traffic-observer.ts'
import type { LiveGrouping } from './live-api.ts'
import { HISTORY_SECONDS, LiveRow } from './live-row.ts'
import { isSuccess } from './response-class.ts'
import type { HistorySnapshot, StatRowSnapshot, StatSnapshot } from './stat-snapshot.ts'
import { ResolvedLatency, WINDOW_SLOTS } from './windowed-histogram.ts'

/** The row of requests with no service, route or cluster (a 404 NR, a local reply before routing). */
export const NO_NAME = '(none)'
/** The row the requests of a grouping's rows past the cap are folded into. */
export const OTHER_ROWS = '(other)'
/** Rows a grouping keeps per direction; past it, new names count under OTHER_ROWS. */
export const MAX_ROWS_PER_GROUPING = 500

import { LIVE_GROUPINGS } from './live-limits.ts'

export { LIVE_GROUPINGS }

const SERVICE = 0
const ROUTE = 1
const CLUSTER = 2
const LISTENER = 3

const INBOUND = 0
const OUTBOUND = 1

/** A proxied TCP connection's bytes as last sampled. */
interface TcpSample {
  received: number
  sent: number
}

/** The rows a request counts in, with the names that found them (the memo of the last request's). */
interface RequestRows {
  readonly listenerName: string
  readonly routeName: string
  readonly clusterName: string
  readonly service: LiveRow
  readonly route: LiveRow
  readonly cluster: LiveRow
  readonly listener: LiveRow
}

/** The rows of one grouping in one direction, capped. */
class RowTable {
  readonly rows = new Map<string, LiveRow>()
  readonly #direction: TrafficDirection
  readonly #serviceOf: ((name: string) => string) | undefined
  #other: LiveRow | undefined

  constructor(direction: TrafficDirection, serviceOf?: (name: string) => string) {
    this.#direction = direction
    this.#serviceOf = serviceOf
  }

  row(name: string): LiveRow {
    const row = this.rows.get(name)
    if (row !== undefined) return row
    return this.#add(name)
  }

  #add(name: string): LiveRow {
    if (this.rows.size >= MAX_ROWS_PER_GROUPING) {
      this.#other ??= new LiveRow(OTHER_ROWS, this.#direction, this.#serviceOf?.(OTHER_ROWS) ?? '')
      return this.#other
    }
    const row = new LiveRow(name, this.#direction, this.#serviceOf?.(name) ?? '')
    this.rows.set(name, row)
    return row
  }

  *all(): Iterable<LiveRow> {
    yield* this.rows.values()
    if (this.#other !== undefined) yield this.#other
  }

  /** Closes the second for every row and lets go of the rows idle for the whole history. */
  rotate(t: number): void {
    for (const [name, row] of this.rows) {
      row.rotate(t)
      if (row.expired) this.rows.delete(name)
    }
    if (this.#other !== undefined) {
      this.#other.rotate(t)
      if (this.#other.expired) this.#other = undefined
    }
  }
}

/**
 * The service of a cluster's requests: the host its name carries (`outbound|9080||reviews.default.svc.cluster.local`);
 * for an inbound cluster (`inbound|9080||`), which names none, `inboundService`; NO_NAME for the NO_NAME cluster.
 */
function serviceOfCluster(inboundService: string): (clusterName: string) => string {
  return (clusterName) => {
    if (clusterName === NO_NAME || clusterName === OTHER_ROWS) return NO_NAME
    const service = clusterName.slice(clusterName.lastIndexOf('|') + 1)
    return service !== '' ? service : inboundService
  }
}

/**
 * Counts each finished request once per grouping (four Map lookups on strings the model holds, or none
 * when the request has the last one's names; the latency's hdr index computed once and counted in four rows) and samples open TCP connections' bytes once a second. A
 * one-second timer (unref'd) closes the second of every row. Rows are bounded: MAX_ROWS_PER_GROUPING
 * per grouping and direction, and a row idle for the whole history is dropped.
 */
export class LiveStats implements TrafficObserver {
  readonly name = 'live-stats'
  /** [grouping][direction] */
  readonly #tables: readonly (readonly [RowTable, RowTable])[]
  readonly #openTcp = new Map<TcpRecord, TcpSample>()
  #timer: NodeJS.Timeout | undefined
  /** Per direction, the rows of the last request (cleared each tick, when idle rows may go). */
  readonly #lastRows: (RequestRows | undefined)[] = [undefined, undefined]
  /** Reused for every request: the latency in the form the rows record. */
  readonly #latency = new ResolvedLatency()
  readonly #clock: () => number
  /** The unix second the last tick closed (0 before the first). */
  #lastSecond = 0

  /**
   * `inboundService` names the service of inbound requests (their clusters name none): the runtime passes
   * the workload's `<canonical service>.<namespace>`. `clock` gives unix milliseconds (Date.now; a test
   * passes its own and calls `tick`). `autoTick` false: no timer.
   */
  constructor(
    options: {
      readonly inboundService?: string
      readonly clock?: () => number
      readonly autoTick?: boolean
    } = {},
  ) {
    const serviceOf = serviceOfCluster(options.inboundService ?? NO_NAME)
    this.#tables = [
      [new RowTable('inbound'), new RowTable('outbound')],
      [new RowTable('inbound'), new RowTable('outbound')],
      [new RowTable('inbound', serviceOf), new RowTable('outbound', serviceOf)],
      [new RowTable('inbound'), new RowTable('outbound')],
    ]
    this.#clock = options.clock ?? Date.now
    if (options.autoTick === false) return
    this.#scheduleTick()
  }

  /**
   * Each tick lands just after a wall-clock second, so that every worker's seconds line up; scheduling
   * each one afresh (not setInterval) keeps late ticks from drifting across a second.
   */
  #scheduleTick(): void {
    this.#timer = setTimeout(
      () => {
        this.tick()
        this.#scheduleTick()
      },
      1000 - (this.#clock() % 1000),
    )
    this.#timer.unref()
  }

  requestEnded(record: RequestRecord): void {
    const d = record.direction === 'inbound' ? INBOUND : OUTBOUND
    const latency = this.#latency.set((record.endTime - record.startTime) * 1000)
    const success = isSuccess(record)
    const rows = this.#requestRows(d, record.listenerName, record.routeStatName, record.clusterName)
    rows.service.recordRequest(latency, success)
    rows.route.recordRequest(latency, success)
    rows.cluster.recordRequest(latency, success)
    rows.listener.recordRequest(latency, success)
  }

  /**
   * The four rows of a request, looked up by name, or the last request's in that direction when it had the
   * same listener, route and cluster (the model's strings: the same objects each time, so `===` is a pointer
   * comparison and a run of one route's requests does no Map lookup).
   */
  #requestRows(d: number, listener: string, route: string, cluster: string): RequestRows {
    const last = this.#lastRows[d]
    if (
      last !== undefined &&
      last.listenerName === listener &&
      last.routeName === route &&
      last.clusterName === cluster
    )
      return last
    const tables = this.#tables
    const clusterRow = tables[CLUSTER][d].row(cluster === '' ? NO_NAME : cluster)
    const rows: RequestRows = {
      listenerName: listener,
      routeName: route,
      clusterName: cluster,
      service: tables[SERVICE][d].row(clusterRow.serviceName),
      route: tables[ROUTE][d].row(route === '' ? NO_NAME : route),
      cluster: clusterRow,
      listener: tables[LISTENER][d].row(listener),
    }
    this.#lastRows[d] = rows
    return rows
  }

  tcpOpened(record: TcpRecord): void {
    this.#openTcp.set(record, { received: 0, sent: 0 })
  }

  tcpEnded(record: TcpRecord): void {
    const sample = this.#openTcp.get(record)
    if (sample === undefined) return
    this.#sampleTcp(record, sample)
    this.#openTcp.delete(record)
  }

  /** Adds a connection's bytes since its last sample to its rows' current second. */
  #sampleTcp(record: TcpRecord, sample: TcpSample): void {
    const received = record.bytesReceived - sample.received
    const sent = record.bytesSent - sample.sent
    if (received === 0 && sent === 0) return
    sample.received = record.bytesReceived
    sample.sent = record.bytesSent
    for (const row of this.#tcpRows(record)) row.addTcpBytes(received, sent)
  }

  /** A TCP connection's rows: its service, cluster and listener (TCP has no HTTP route: no route row). */
  #tcpRows(record: TcpRecord): [LiveRow, LiveRow, LiveRow] {
    const d = record.direction === 'inbound' ? INBOUND : OUTBOUND
    const cluster = this.#tables[CLUSTER][d].row(record.clusterName === '' ? NO_NAME : record.clusterName)
    const service = record.destinationService === '' ? cluster.serviceName : record.destinationService
    return [
      this.#tables[SERVICE][d].row(service),
      cluster,
      this.#tables[LISTENER][d].row(record.listenerName),
    ]
  }

  /** Counts the open TCP connections of every row afresh. */
  #countOpenTcp(): void {
    for (const pair of this.#tables) for (const table of pair) for (const row of table.all()) row.tcpOpen = 0
    for (const record of this.#openTcp.keys()) for (const row of this.#tcpRows(record)) row.tcpOpen++
  }

  /** Closes the current second: samples open connections' bytes, then rotates every row. */
  tick(): void {
    for (const [record, sample] of this.#openTcp) this.#sampleTcp(record, sample)
    this.#countOpenTcp()
    // One history point per second: a tick that comes late (a busy loop) closes the next second, not the
    // one the clock rounds to, unless the clock has moved on by more than a second (a stall, a clock jump).
    const wall = Math.round(this.#clock() / 1000)
    const next = this.#lastSecond + 1
    const t = this.#lastSecond !== 0 && Math.abs(wall - next) <= 1 ? next : wall
    this.#lastSecond = t
    this.#lastRows.fill(undefined)
    for (const pair of this.#tables) for (const table of pair) table.rotate(t)
  }

  /** This thread's rows of `by` over the last `windowSeconds` (1..60), with activity or open connections. */
  snapshot(by: LiveGrouping, windowSeconds: number): StatSnapshot {
    for (const [record, sample] of this.#openTcp) this.#sampleTcp(record, sample)
    this.#countOpenTcp()
    const seconds = Math.min(Math.max(1, windowSeconds), WINDOW_SLOTS)
    const rows: StatRowSnapshot[] = []
    for (const table of this.#tables[LIVE_GROUPINGS.indexOf(by)])
      for (const row of table.all()) {
        const snapshot = row.snapshot(seconds)
        if (snapshot !== undefined) rows.push(snapshot)
      }
    return { by, windowSeconds: seconds, rows }
  }

  /** This thread's history of `by` over the last `seconds` (at most HISTORY_SECONDS), rows with requests only. */
  history(by: LiveGrouping, seconds: number): HistorySnapshot {
    const count = Math.min(Math.max(1, seconds), HISTORY_SECONDS)
    const rows: HistorySnapshot['rows'][number][] = []
    for (const table of this.#tables[LIVE_GROUPINGS.indexOf(by)])
      for (const row of table.all()) {
        const points = row.history(count)
        if (points !== undefined) rows.push({ name: row.name, direction: row.direction, points })
      }
    return { by, rows }
  }

  /** Rows kept now (all groupings and directions), and the bytes their latency histograms hold. */
  footprint(): { rows: number; latencyBytes: number } {
    let rows = 0
    let latencyBytes = 0
    for (const pair of this.#tables)
      for (const table of pair)
        for (const row of table.all()) {
          rows++
          latencyBytes += row.latencyFootprintBytes
        }
    return { rows, latencyBytes }
  }

  /** Stops the timer (at shutdown). */
  close(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
