// A cluster's circuit breakers, Envoy's thresholds as plain counters: connections, requests, pending, retries.

import { type ConnectionPoolModel, type RetryBudgetModel, UNLIMITED } from '../config/model.ts'

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

/**
 * Shared by a cluster's endpoints; it outlives config reloads of its cluster, so requests that started
 * before a reload release the same counters they took. An endpoint holds `maxConnections` connections;
 * requests beyond that wait in its pool's queue, so the cluster's pending count is
 * Σ max(0, active − maxConnections) over its endpoints, kept exact by UpstreamEndpoint.acquire/release.
 */
export class CircuitBreaker {
  #limits: ConnectionPoolModel = noLimits
  #budget: RetryBudgetModel | undefined
  /** Requests dispatched and not finished, pending ones included. */
  activeRequests = 0
  /** Requests waiting for a connection. */
  pendingRequests = 0
  activeRetries = 0
  /** Envoy's upstream_rq_overflow, upstream_rq_pending_overflow, upstream_rq_retry_overflow. */
  requestOverflows = 0
  pendingOverflows = 0
  retryOverflows = 0
  /** Opaque TCP connections to the cluster's endpoints, connecting or open (Envoy's connections resource). */
  activeConnections = 0
  /** Envoy's upstream_cx_overflow: TCP connections refused because maxConnections were open. */
  connectionOverflows = 0

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
    if (endpointActive >= maxConnections) {
      if (this.pendingRequests < this.#limits.maxPendingRequests) return true
      this.pendingOverflows++
      return false
    }
    if (this.activeRequests - this.pendingRequests < this.#limits.maxRequests) return true
    this.requestOverflows++
    return false
  }

  /** Retries allowed in flight now: the retry budget when set (it overrides maxRetries), else maxRetries. */
  get maxActiveRetries(): number {
    const budget = this.#budget
    if (budget === undefined) return this.#limits.maxRetries
    return Math.max((budget.percent / 100) * this.activeRequests, budget.minRetryConcurrency)
  }

  /** Takes a retry slot; false means the retry circuit breaker overflowed (no retry). */
  tryStartRetry(): boolean {
    if (this.activeRetries < this.maxActiveRetries) {
      this.activeRetries++
      return true
    }
    this.retryOverflows++
    return false
  }

  endRetry(): void {
    if (this.activeRetries > 0) this.activeRetries--
  }

  /**
   * Takes a connection slot for an opaque TCP connection, as Envoy's tcp_proxy does before it
   * connects: maxConnections counts across the cluster. False means overflow (close it, flag UO).
   */
  tryStartConnection(): boolean {
    if (this.activeConnections < this.#limits.maxConnections) {
      this.activeConnections++
      return true
    }
    this.connectionOverflows++
    return false
  }

  /** The upstream connection a slot was taken for has closed. */
  endConnection(): void {
    if (this.activeConnections > 0) this.activeConnections--
  }
}
