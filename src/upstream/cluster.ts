// A cluster at run time: endpoints with their pools, load balancer, circuit breakers and outlier detector.

import { type ClusterModel, type ConnectionPoolModel, UNLIMITED } from '../config/model.ts'
import { CircuitBreaker } from './circuit-breaker.ts'
import { createLoadBalancer } from './lb/create-load-balancer.ts'
import type { LbRequest } from './lb/hash-policy.ts'
import type { LoadBalancer } from './lb/load-balancer.ts'
import { HostMonitor, OutlierDetector } from './outlier-detection.ts'
import { poolKey, UpstreamEndpoint } from './upstream-endpoint.ts'
import { upstreamProtocol } from './upstream-protocol.ts'

/**
 * One object per cluster name for the life of the process: a reload re-applies the model, and
 * endpoints whose pool settings did not change keep their pool, counters and outlier state (as Envoy
 * keeps its hosts), so requests started before the reload release the counters they took.
 */
export class Cluster {
  model: ClusterModel
  endpoints: readonly UpstreamEndpoint[] = []
  /** Envoy's circuit-breaker thresholds and counters for this cluster. */
  readonly breaker = new CircuitBreaker()
  #lb: LoadBalancer | undefined
  /** The endpoints the load balancer chooses from: not ejected, or all of them in panic mode. */
  #available: readonly UpstreamEndpoint[] = []
  #outlier: OutlierDetector | undefined

  constructor(model: ClusterModel) {
    this.model = model
    this.apply(model)
  }

  get name(): string {
    return this.model.name
  }

  /** The outlier detector (ejection counters for stats), when the policy has outlierDetection. */
  get outlierDetector(): OutlierDetector | undefined {
    return this.#outlier
  }

  /** Applies a (re)compiled model; endpoints that leave close their pools after their requests finish. */
  apply(model: ClusterModel): void {
    const settings = {
      connectTimeoutMs: model.connectTimeoutMs,
      connectionPool: endpointShare(model.policy.connectionPool, model.endpoints.length),
      protocol: upstreamProtocol(model),
    }
    const previous = new Map<string, UpstreamEndpoint[]>()
    for (const e of this.endpoints) {
      const same = previous.get(e.key)
      if (same === undefined) previous.set(e.key, [e])
      else same.push(e)
    }
    const endpoints = model.endpoints.map((e) => {
      const kept = previous.get(poolKey(e.address, e.port, settings))?.shift()
      const endpoint = kept ?? new UpstreamEndpoint(e.address, e.port, e.weight, settings, this.breaker)
      endpoint.weight = Math.max(1, e.weight)
      return endpoint
    })
    for (const left of previous.values()) for (const e of left) void e.close()
    this.model = model
    this.endpoints = endpoints
    this.breaker.configure(model.policy.connectionPool, model.policy.retryBudget)
    this.#applyOutlierDetection()
    this.#lb = createLoadBalancer(model.policy.loadBalancer, endpoints)
    this.#available = this.#computeAvailable()
    this.#lb.update?.(this.#available)
  }

  #applyOutlierDetection(): void {
    const config = this.model.policy.outlierDetection
    if (config === undefined) {
      this.#outlier?.stop()
      this.#outlier = undefined
      for (const e of this.endpoints) e.outlier = undefined
      return
    }
    if (this.#outlier === undefined) this.#outlier = new OutlierDetector(config, this.#onHealthChange)
    const detector = this.#outlier
    detector.config = config
    detector.setMonitors(this.endpoints.map((e) => (e.outlier ??= new HostMonitor(detector))))
    detector.start()
  }

  readonly #onHealthChange = (): void => {
    this.#available = this.#computeAvailable()
    this.#lb?.update?.(this.#available)
  }

  /** Envoy's panic mode: below minHealthPercent healthy endpoints, balance over all of them. */
  #computeAvailable(): readonly UpstreamEndpoint[] {
    const all = this.endpoints
    const detector = this.#outlier
    if (detector === undefined || detector.ejectedCount === 0) return all
    const healthy = all.filter((e) => !e.ejected)
    const minHealth = detector.config.minHealthPercent
    return minHealth > 0 && (100 * healthy.length) / all.length < minHealth ? all : healthy
  }

  /** The endpoint for the next request, or undefined when none is available (503 UH). */
  pick(request: LbRequest): UpstreamEndpoint | undefined {
    const available = this.#available
    if (available.length === 0) return undefined
    return (this.#lb as LoadBalancer).pick(available, request)
  }

  /** Whether the circuit breakers let one more request go to `endpoint` now (else 503 UO). */
  admits(endpoint: UpstreamEndpoint): boolean {
    return endpoint.admits()
  }

  /**
   * For the retry policy: takes a slot under the cluster's retry limit (the retry budget when set,
   * else connectionPool.http.maxRetries). False means overflow: do not retry. Envoy holds the slot
   * from scheduling a retry until it is sent (the backoff); call endRetry() then, or when abandoning it.
   */
  tryStartRetry(): boolean {
    return this.breaker.tryStartRetry()
  }

  endRetry(): void {
    this.breaker.endRetry()
  }

  /** Stops the outlier sweep and closes every pool once its requests finish. */
  async close(): Promise<void> {
    this.#outlier?.stop()
    await Promise.all(this.endpoints.map((e) => e.close()))
  }
}

/**
 * Envoy's max_connections is one circuit breaker for the whole cluster; each endpoint's pool gets an
 * equal share of it (at least one connection), so the cluster never holds more than the limit.
 */
export function endpointShare(pool: ConnectionPoolModel, endpoints: number): ConnectionPoolModel {
  if (pool.maxConnections >= UNLIMITED || endpoints <= 1) return pool
  return { ...pool, maxConnections: Math.max(1, Math.floor(pool.maxConnections / endpoints)) }
}
