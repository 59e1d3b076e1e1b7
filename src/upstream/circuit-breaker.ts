// A cluster's circuit breakers, Envoy's thresholds as plain counters: connections, requests, pending, retries.

import { type ConnectionPoolModel, type RetryBudgetModel, UNLIMITED } from '../config/model.ts'
import { type CounterBlock, decrementToZero, privateBlock } from '../shared/shared-counters.ts'

const noLimits: ConnectionPoolModel = {
  maxConnections: UNLIMITED,
  maxPendingRequests: UNLIMITED,
  maxRequests: UNLIMITED,
  maxRetries: UNLIMITED,
  maxRequestsPerConnection: 0,
  idleTimeoutMs: undefined,
  maxConnectionDurationMs: undefined,
  tcpKeepaliveTimeMs: undefined,
  h2Upgrade: false,
  useClientProtocol: false,
  maxConcurrentStreams: UNLIMITED,
}

/** The breaker's counters: cells of its block in the proxy's SharedCounters. */
const activeRequestsCell = 0
const pendingRequestsCell = 1
const activeRetriesCell = 2
const requestOverflowsCell = 3
const pendingOverflowsCell = 4
const retryOverflowsCell = 5
const activeConnectionsCell = 6
const connectionOverflowsCell = 7

/**
 * Shared by a cluster's endpoints; it outlives config reloads of its cluster, so requests that started
 * before a reload release the same counters they took. An endpoint holds `maxConnections` connections;
 * requests beyond that wait in its pool's queue, so the cluster's pending count is
 * Σ max(0, active − maxConnections) over its endpoints, kept exact by UpstreamEndpoint.acquire/release.
 *
 * The counters live in a SharedCounters block (the cluster's, by name), so with several worker threads
 * a limit holds for the whole proxy, as Envoy's per-cluster ResourceManager is shared by its workers
 * (source/common/upstream/resource_manager_impl.h). As there, a request is checked (admits) and then
 * counted (UpstreamEndpoint.acquire): two workers admitting at the same instant may both pass the last
 * free slot, exactly as two Envoy workers may (canCreate() then inc() on an atomic).
 */
export class CircuitBreaker {
  #limits: ConnectionPoolModel = noLimits
  #budget: RetryBudgetModel | undefined
  readonly #cells: Int32Array
  readonly #base: number

  /** `block`: the cluster's counters (SharedCounters.block); a private one by default (one thread). */
  constructor(block: CounterBlock = privateBlock()) {
    this.#cells = block.cells
    this.#base = block.base
  }

  /** Requests dispatched and not finished, pending ones included. */
  get activeRequests(): number {
    return this.#cells[this.#base + activeRequestsCell]
  }

  set activeRequests(value: number) {
    Atomics.store(this.#cells, this.#base + activeRequestsCell, value)
  }

  /** Requests waiting for a connection. */
  get pendingRequests(): number {
    return this.#cells[this.#base + pendingRequestsCell]
  }

  get activeRetries(): number {
    return this.#cells[this.#base + activeRetriesCell]
  }

  /** Envoy's upstream_rq_overflow, upstream_rq_pending_overflow, upstream_rq_retry_overflow. */
  get requestOverflows(): number {
    return this.#cells[this.#base + requestOverflowsCell]
  }

  get pendingOverflows(): number {
    return this.#cells[this.#base + pendingOverflowsCell]
  }

  get retryOverflows(): number {
    return this.#cells[this.#base + retryOverflowsCell]
  }

  /** Opaque TCP connections to the cluster's endpoints, connecting or open (Envoy's connections resource). */
  get activeConnections(): number {
    return this.#cells[this.#base + activeConnectionsCell]
  }

  /** Envoy's upstream_cx_overflow: TCP connections refused because maxConnections were open. */
  get connectionOverflows(): number {
    return this.#cells[this.#base + connectionOverflowsCell]
  }

  configure(limits: ConnectionPoolModel, budget: RetryBudgetModel | undefined): void {
    this.#limits = limits
    this.#budget = budget
  }

  get limits(): ConnectionPoolModel {
    return this.#limits
  }

  /**
   * Whether one more request fits, for an endpoint with `endpointActive` requests on
   * `maxConnections` connections. As Envoy's connection pool: a request that gets a connection
   * counts against max requests; one that must wait counts against max pending requests.
   */
  admits(endpointActive: number, maxConnections: number): boolean {
    const cells = this.#cells
    const base = this.#base
    if (endpointActive >= maxConnections) {
      if (cells[base + pendingRequestsCell] < this.#limits.maxPendingRequests) return true
      Atomics.add(cells, base + pendingOverflowsCell, 1)
      return false
    }
    if (cells[base + activeRequestsCell] - cells[base + pendingRequestsCell] < this.#limits.maxRequests)
      return true
    Atomics.add(cells, base + requestOverflowsCell, 1)
    return false
  }

  /** A request starts on an endpoint (`pending`: it waits for a connection there). */
  startRequest(pending: boolean): void {
    if (pending) Atomics.add(this.#cells, this.#base + pendingRequestsCell, 1)
    Atomics.add(this.#cells, this.#base + activeRequestsCell, 1)
  }

  /** A request ended (`wasPending`: it was still counted as waiting for a connection). */
  endRequest(wasPending: boolean): void {
    if (wasPending) decrementToZero(this.#cells, this.#base + pendingRequestsCell)
    decrementToZero(this.#cells, this.#base + activeRequestsCell)
  }

  /** Retries allowed in flight now: the retry budget when set (it overrides maxRetries), else maxRetries. */
  get maxActiveRetries(): number {
    const budget = this.#budget
    if (budget === undefined) return this.#limits.maxRetries
    return Math.max((budget.percent / 100) * this.activeRequests, budget.minRetryConcurrency)
  }

  /**
   * Takes a retry slot; false means the retry circuit breaker overflowed (no retry). The slot is taken
   * by compareExchange, so concurrent workers never hold more than the limit between them.
   */
  tryStartRetry(): boolean {
    const cells = this.#cells
    const at = this.#base + activeRetriesCell
    const max = this.maxActiveRetries
    let active = Atomics.load(cells, at)
    while (active < max) {
      const seen = Atomics.compareExchange(cells, at, active, active + 1)
      if (seen === active) return true
      active = seen
    }
    Atomics.add(cells, this.#base + retryOverflowsCell, 1)
    return false
  }

  endRetry(): void {
    decrementToZero(this.#cells, this.#base + activeRetriesCell)
  }

  /**
   * Takes a connection slot for an opaque TCP connection, as Envoy's tcp_proxy does before it
   * connects: maxConnections counts across the cluster (and across workers, by compareExchange).
   * False means overflow (close it, flag UO).
   */
  tryStartConnection(): boolean {
    const cells = this.#cells
    const at = this.#base + activeConnectionsCell
    const max = this.#limits.maxConnections
    let active = Atomics.load(cells, at)
    while (active < max) {
      const seen = Atomics.compareExchange(cells, at, active, active + 1)
      if (seen === active) return true
      active = seen
    }
    Atomics.add(cells, this.#base + connectionOverflowsCell, 1)
    return false
  }

  /** The upstream connection a slot was taken for has closed. */
  endConnection(): void {
    decrementToZero(this.#cells, this.#base + activeConnectionsCell)
  }
}
