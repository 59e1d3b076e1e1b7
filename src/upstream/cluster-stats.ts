// A cluster's Envoy stats (upstream_rq_*, upstream_cx_*, retry.*): Int32 counters in the proxy's SharedCounters, counted by the router and the pools, read at scrape time.

import { type CounterBlock, decrementToZero, type SharedCounters } from '../shared/shared-counters.ts'

/**
 * The request counters, cells of the cluster's `stats|rq|<name>` block, under Envoy's names
 * (docs: "Cluster manager statistics", general cluster statistics).
 */
export const ClusterRequestStat = {
  upstream_rq_total: 0,
  upstream_rq_completed: 1,
  upstream_rq_retry: 2,
  upstream_rq_retry_success: 3,
  upstream_rq_retry_limit_exceeded: 4,
  upstream_rq_timeout: 5,
  upstream_rq_per_try_timeout: 6,
  upstream_cx_none_healthy: 7,
  upstream_cx_total: 8,
  upstream_cx_active: 9,
  upstream_cx_connect_fail: 10,
  upstream_cx_destroy: 11,
  'retry.upstream_rq_completed': 12,
} as const

export type ClusterRequestStatName = keyof typeof ClusterRequestStat

/**
 * Cells of the `stats|class|<name>` block: upstream_rq_1xx..5xx at 0..4, retry.upstream_rq_1xx..5xx at
 * 5..9, and upstream_cx_protocol_error at 10 (the `stats|rq|` block's 13 values are taken).
 */
const retryClassOffset = 5
const protocolErrorCell = 10

/*
 * A `stats|codes|<name>|<class>` block is a bitmap (cells 0..3) of the codes of that class seen by any
 * worker (bit `code % 100`), so a reader finds every per-code block without probing the hundred codes.
 */

/** Cells of a `stats|code|<name>|<code>` block: upstream_rq_<code>, then retry.upstream_rq_<code>. */
const codeCell = 0
const retryCodeCell = 1

/** How the pools report an upstream connection's life (HTTP/1.1, HTTP/2, TCP and upgrade sockets alike). */
export interface ConnectionEvents {
  connectionOpened(): void
  connectionClosed(): void
  connectFailed(): void
}

/**
 * One cluster's counters, shared by every worker: Envoy keeps a cluster's stats once per proxy, and a
 * request touches only `Atomics.add` on cells found when the cluster was built. Per-code counters
 * (upstream_rq_503) get their block the first time this worker sees the code (a hash and a probe, once).
 */
export class ClusterStats implements ConnectionEvents {
  readonly #counters: SharedCounters
  readonly #name: string
  readonly #rq: CounterBlock
  readonly #classes: CounterBlock
  /** This worker's per-code blocks, by status code; made at the first response. */
  #codes: (CounterBlock | undefined)[] | undefined

  constructor(counters: SharedCounters, clusterName: string) {
    this.#counters = counters
    this.#name = clusterName
    this.#rq = counters.block(`stats|rq|${clusterName}`)
    this.#classes = counters.block(`stats|class|${clusterName}`)
  }

  #add(stat: ClusterRequestStatName): void {
    Atomics.add(this.#rq.cells, this.#rq.base + ClusterRequestStat[stat], 1)
  }

  /** A try was sent to an endpoint (Envoy counts upstream_rq_total when the pool attaches the stream). */
  requestStarted(): void {
    Atomics.add(this.#rq.cells, this.#rq.base, 1)
  }

  /**
   * Envoy's chargeUpstreamCode (source/common/router/router.cc): the upstream's response that goes
   * downstream, or the 503/504 the router answers for an upstream failure, counts under
   * upstream_rq_completed, upstream_rq_<N>xx and upstream_rq_<code>.
   */
  chargeCode(status: number): void {
    this.#charge(status, false)
  }

  /** A response dropped for a retry: router.cc charges it under the `retry.` prefix instead. */
  chargeRetriedCode(status: number): void {
    this.#charge(status, true)
  }

  #charge(status: number, retried: boolean): void {
    const klass = (status / 100) | 0
    if (klass < 1 || klass > 5) return
    this.#add(retried ? 'retry.upstream_rq_completed' : 'upstream_rq_completed')
    const classes = this.#classes
    Atomics.add(classes.cells, classes.base + (retried ? retryClassOffset : 0) + klass - 1, 1)
    this.#codes ??= new Array<CounterBlock | undefined>(600)
    const block = this.#codes[status] ?? this.#claimCode(status)
    Atomics.add(block.cells, block.base + (retried ? retryCodeCell : codeCell), 1)
  }

  #claimCode(status: number): CounterBlock {
    const block = this.#counters.block(`stats|code|${this.#name}|${status}`)
    const seen = this.#counters.block(`stats|codes|${this.#name}|${(status / 100) | 0}`)
    const bit = status % 100
    Atomics.or(seen.cells, seen.base + (bit >> 5), 1 << (bit & 31))
    ;(this.#codes as (CounterBlock | undefined)[])[status] = block
    return block
  }

  /** The router scheduled a retry (RetryStateImpl::shouldRetry: upstream_rq_retry). */
  retried(): void {
    this.#add('upstream_rq_retry')
  }

  /** A retried request's next outcome was not retriable (RetryStateImpl: upstream_rq_retry_success). */
  retrySucceeded(): void {
    this.#add('upstream_rq_retry_success')
  }

  /** A retriable outcome with no retries left (upstream_rq_retry_limit_exceeded; the URX flag). */
  retryLimitExceeded(): void {
    this.#add('upstream_rq_retry_limit_exceeded')
  }

  /** The route timeout fired (Filter::onResponseTimeout: upstream_rq_timeout). */
  timedOut(): void {
    this.#add('upstream_rq_timeout')
  }

  /** A try's perTryTimeout fired (upstream_rq_per_try_timeout). */
  perTryTimedOut(): void {
    this.#add('upstream_rq_per_try_timeout')
  }

  /**
   * The upstream's response was a protocol error: not valid HTTP, or a head over the limits
   * (upstream_cx_protocol_error; the UPE flag).
   */
  protocolError(): void {
    Atomics.add(this.#classes.cells, this.#classes.base + protocolErrorCell, 1)
  }

  /** No healthy endpoint to pick (upstream_cx_none_healthy; the UH flag). */
  noneHealthy(): void {
    this.#add('upstream_cx_none_healthy')
  }

  connectionOpened(): void {
    const { cells, base } = this.#rq
    Atomics.add(cells, base + ClusterRequestStat.upstream_cx_total, 1)
    Atomics.add(cells, base + ClusterRequestStat.upstream_cx_active, 1)
  }

  connectionClosed(): void {
    const { cells, base } = this.#rq
    decrementToZero(cells, base + ClusterRequestStat.upstream_cx_active)
    Atomics.add(cells, base + ClusterRequestStat.upstream_cx_destroy, 1)
  }

  /** Envoy counts a failed attempt in upstream_cx_total and upstream_cx_connect_fail. */
  connectFailed(): void {
    const { cells, base } = this.#rq
    Atomics.add(cells, base + ClusterRequestStat.upstream_cx_total, 1)
    Atomics.add(cells, base + ClusterRequestStat.upstream_cx_connect_fail, 1)
  }
}

/** A cluster's counters as a reader (admin, the Prometheus collector) sees them: any worker's counts. */
export interface ClusterStatsSnapshot {
  readonly requests: Readonly<Record<ClusterRequestStatName | 'upstream_cx_protocol_error', number>>
  /** upstream_rq_1xx..5xx (index 0..4). */
  readonly classes: readonly number[]
  /** retry.upstream_rq_1xx..5xx. */
  readonly retryClasses: readonly number[]
  /** [code, upstream_rq_<code>, retry.upstream_rq_<code>] for every code some worker counted, ascending. */
  readonly codes: readonly (readonly [code: number, count: number, retried: number])[]
}

/**
 * The counters of cluster `name`, read without claiming anything: zeros for a cluster no worker has
 * counted yet (a cluster's run-time object is built by the first request that needs it, on any worker).
 */
export function readClusterStats(counters: SharedCounters, name: string): ClusterStatsSnapshot {
  const rq = counters.find(`stats|rq|${name}`)
  const requests = {} as Record<ClusterRequestStatName | 'upstream_cx_protocol_error', number>
  for (const [stat, cell] of Object.entries(ClusterRequestStat) as [ClusterRequestStatName, number][]) {
    requests[stat] = rq === undefined ? 0 : Atomics.load(rq.cells, rq.base + cell)
  }
  const classBlock = counters.find(`stats|class|${name}`)
  const cell = (i: number): number =>
    classBlock === undefined ? 0 : Atomics.load(classBlock.cells, classBlock.base + i)
  requests.upstream_cx_protocol_error = cell(protocolErrorCell)
  const classes = [0, 1, 2, 3, 4].map(cell)
  const retryClasses = [0, 1, 2, 3, 4].map((i) => cell(retryClassOffset + i))
  const codes: [number, number, number][] = []
  for (let klass = 1; klass <= 5; klass++) {
    const seen = counters.find(`stats|codes|${name}|${klass}`)
    if (seen === undefined) continue
    for (let bit = 0; bit < 100; bit++) {
      if ((Atomics.load(seen.cells, seen.base + (bit >> 5)) & (1 << (bit & 31))) === 0) continue
      const code = klass * 100 + bit
      const block = counters.find(`stats|code|${name}|${code}`)
      if (block === undefined) continue
      codes.push([
        code,
        Atomics.load(block.cells, block.base + codeCell),
        Atomics.load(block.cells, block.base + retryCodeCell),
      ])
    }
  }
  return { requests, classes, retryClasses, codes }
}
