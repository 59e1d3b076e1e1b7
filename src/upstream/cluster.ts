// A cluster at run time: endpoints with their pools, load balancer, circuit breakers and outlier detector.

import { isIP } from 'node:net'
import {
  type ClusterModel,
  type ConnectionPoolModel,
  type EndpointModel,
  UNLIMITED,
} from '../config/model.ts'
import { defaultLimits } from '../protocol/limits.ts'
import { originalDestination } from '../protocol/original-destination.ts'
import { SharedCounters } from '../shared/shared-counters.ts'
import type { UpstreamTls } from '../tls/upstream-tls.ts'
import { CircuitBreaker } from './circuit-breaker.ts'
import { ClusterStats } from './cluster-stats.ts'
import { DnsResolver } from './dns-resolver.ts'
import { DnsTarget } from './dns-target.ts'
import { mod64 } from './lb/hash.ts'
import { type LbRequest, requestHash } from './lb/hash-policy.ts'
import { HostSet } from './lb/host-set.ts'
import { levelFor, loadExcluding, type PriorityLoad, priorityLoad } from './lb/priority-load.ts'
import { slowStartFactor } from './lb/slow-start.ts'
import { HostMonitor, OutlierDetector } from './outlier-detection.ts'
import {
  type EndpointTls,
  outlierCells,
  type PoolSettings,
  poolKey,
  UpstreamEndpoint,
} from './upstream-endpoint.ts'
import { upstreamProtocol } from './upstream-protocol.ts'

/**
 * One object per cluster name for the life of the process: a reload re-applies the model, and
 * endpoints whose pool settings did not change keep their pool, counters and outlier state (as Envoy
 * keeps its hosts), so requests started before the reload release the counters they took.
 */
export class Cluster {
  model: ClusterModel
  endpoints: readonly UpstreamEndpoint[] = []
  /** Envoy's circuit-breaker thresholds and counters for this cluster (shared by every worker). */
  readonly breaker: CircuitBreaker
  /** Envoy's cluster stats (upstream_rq_*, upstream_cx_*), counted by the router and the pools. */
  readonly stats: ClusterStats
  /** Where the cluster's, its endpoints' and its detector's counters live (shared by every worker). */
  readonly #counters: SharedCounters
  /** The priority levels (Envoy's host sets), level 0 first; one unless locality failover splits them. */
  #levels: HostSet<UpstreamEndpoint>[] = []
  /** Percent of requests per level, and each level's health (for retries that skip levels). */
  #load: PriorityLoad = { load: [100], panic: [false], health: [100] }
  /** The request hash that picks the priority level, as two 32-bit halves (hash balancers only). */
  readonly #levelHash = new Uint32Array(2)
  #outlier: OutlierDetector | undefined
  /** The detector's generation when this worker last refreshed health: another worker's ejection changes it. */
  #seenOutlierGeneration = 0
  /** While endpoints warm up (slow start): when their weights are next recomputed, else 0. */
  #nextWarmupUpdate = 0
  #applied = false
  #settings: PoolSettings | undefined
  /** The DNS names of a STRICT_DNS or LOGICAL_DNS cluster's endpoints, each resolving on its own timer. */
  #dnsTargets = new Map<string, DnsTarget>()
  #resolver: DnsResolver | undefined
  /** Builds the connections of endpoints that originate TLS (the runtime's; absent: TLS endpoints fail to connect). */
  readonly #upstreamTls: UpstreamTls | undefined
  /** An ORIGINAL_DST cluster's hosts, one per original destination seen (Envoy's OriginalDstCluster). */
  readonly #originalHosts = new Map<string, { endpoint: UpstreamEndpoint; used: boolean }>()
  #originalSweep: NodeJS.Timeout | undefined

  /** The bootstrap's `limits.maxResponseHeadersKb`, in bytes, for every pool of the cluster. */
  readonly #maxResponseHeadersBytes: number

  /**
   * `resolver` resolves the endpoint names of DNS clusters (the cluster manager shares one; else the
   * system's); `upstreamTls` makes the TLS connections of endpoints whose model has `tls`; `counters` is
   * the proxy's SharedCounters (a table of the cluster's own by default); `maxResponseHeadersBytes` bounds
   * the response heads its pools accept.
   */
  constructor(
    model: ClusterModel,
    resolver?: DnsResolver,
    upstreamTls?: UpstreamTls,
    counters: SharedCounters = SharedCounters.create(256, false),
    maxResponseHeadersBytes = defaultLimits.maxResponseHeadersBytes,
  ) {
    this.#maxResponseHeadersBytes = maxResponseHeadersBytes
    this.model = model
    this.#resolver = resolver
    this.#upstreamTls = upstreamTls
    this.#counters = counters
    this.breaker = new CircuitBreaker(counters.block(breakerKey(model.name)))
    this.stats = new ClusterStats(counters, model.name)
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
    this.model = model
    // A DNS endpoint's resolved hosts share what the model endpoint would get: the pool settings are
    // fixed per model, so a host that persists across re-resolutions keeps its pool and its state.
    this.#settings = {
      maxResponseHeadersBytes: this.#maxResponseHeadersBytes,
      connectTimeoutMs: model.connectTimeoutMs,
      connectionPool: endpointShare(model.policy.connectionPool, model.endpoints.length),
      protocol: upstreamProtocol(model),
    }
    this.#updateDnsTargets(model)
    this.breaker.configure(model.policy.connectionPool, model.policy.retryBudget)
    this.#placeEndpoints()
  }

  /** Settles once every DNS name of the cluster has been resolved once (answered or failed). */
  get warmed(): Promise<void> {
    return Promise.all([...this.#dnsTargets.values()].map((t) => t.firstResolution)).then(() => {})
  }

  /** The cluster's DNS names, for /clusters and tests. */
  get dnsTargets(): Iterable<DnsTarget> {
    return this.#dnsTargets.values()
  }

  /** Starts resolving names the model added; stops those it dropped. */
  #updateDnsTargets(model: ClusterModel): void {
    const targets = new Map<string, DnsTarget>()
    if (model.discovery !== undefined) {
      for (const e of model.endpoints) {
        if (isIP(e.address) !== 0 || targets.has(e.address)) continue
        this.#resolver ??= new DnsResolver()
        targets.set(
          e.address,
          this.#dnsTargets.get(e.address) ?? new DnsTarget(e.address, this.#resolver, this.#onDnsChange),
        )
      }
    }
    for (const [name, target] of this.#dnsTargets) if (!targets.has(name)) target.stop()
    this.#dnsTargets = targets
  }

  /** A name resolved to other addresses: hosts that stay keep their pool, balancing and outlier state. */
  readonly #onDnsChange = (): void => {
    if (this.model.discovery === 'STRICT_DNS') this.#placeEndpoints()
  }

  /**
   * The hosts the model's endpoints stand for now: STRICT_DNS turns a name into one host per
   * resolved address (with the endpoint's weight, labels, locality and priority, as Envoy's
   * ResolveTarget does); LOGICAL_DNS and static endpoints are one host each.
   */
  #hostModels(): readonly EndpointModel[] {
    const model = this.model
    if (model.discovery !== 'STRICT_DNS') return model.endpoints
    const hosts: EndpointModel[] = []
    for (const e of model.endpoints) {
      const target = this.#dnsTargets.get(e.address)
      if (target === undefined) hosts.push(e)
      else for (const address of target.addresses) hosts.push({ ...e, address })
    }
    return hosts
  }

  /** Builds the endpoint list, the priority levels and their health from the current hosts. */
  #placeEndpoints(): void {
    const model = this.model
    const settings = this.#settings
    if (settings === undefined) return
    const previous = new Map<string, UpstreamEndpoint[]>()
    for (const e of this.endpoints) {
      const same = previous.get(e.key)
      if (same === undefined) previous.set(e.key, [e])
      else same.push(e)
    }
    const now = performance.now()
    /** Endpoints of equal pool keys (the same address twice) get a block each: key and occurrence. */
    const occurrences = new Map<string, number>()
    const endpoints = this.#hostModels().map((e) => {
      const key = poolKey(e.address, e.port, settings, e.tls)
      const occurrence = occurrences.get(key) ?? 0
      occurrences.set(key, occurrence + 1)
      const kept = previous.get(key)?.shift()
      const endpoint =
        kept ??
        new UpstreamEndpoint(
          e.address,
          e.port,
          e.weight,
          settings,
          this.breaker,
          this.#tlsOf(e),
          this.#counters.block(`endpoint|${model.name}|${key}|${occurrence}`),
          this.stats,
        )
      // Envoy's slow start applies to endpoints added to a running cluster, not to its first ones.
      if (kept === undefined && this.#applied) endpoint.addedAt = now
      if (kept === undefined && model.discovery === 'LOGICAL_DNS') {
        const target = this.#dnsTargets.get(e.address)
        if (target !== undefined) endpoint.connectThrough(target.lookup)
      }
      endpoint.placeIn(e)
      return endpoint
    })
    for (const left of previous.values()) for (const e of left) void e.close()
    this.endpoints = endpoints
    this.#applied = true
    this.#applyOutlierDetection()
    this.#levels = hostSets(model, endpoints)
    this.#nextWarmupUpdate = 0
    if (model.policy.warmup !== undefined) this.#updateWarmupWeights(now)
    this.#refreshHealth()
  }

  #tlsOf(e: EndpointModel): EndpointTls | undefined {
    if (e.tls === undefined || this.#upstreamTls === undefined) return undefined
    return { model: e.tls, contexts: this.#upstreamTls }
  }

  #applyOutlierDetection(): void {
    const config = this.model.policy.outlierDetection
    if (config === undefined) {
      this.#outlier?.stop()
      this.#outlier = undefined
      for (const e of this.endpoints) e.outlier = undefined
      return
    }
    const counters = this.#counters
    this.#outlier ??= new OutlierDetector(
      config,
      this.#onHealthChange,
      counters,
      counters.block(outlierKey(this.model.name)),
    )
    const detector = this.#outlier
    detector.config = config
    detector.setMonitors(
      this.endpoints.map(
        (e) =>
          (e.outlier ??= new HostMonitor(detector, {
            cells: e.counters.cells,
            base: e.counters.base + outlierCells,
          })),
      ),
    )
    detector.start()
  }

  readonly #onHealthChange = (): void => {
    this.#refreshHealth()
  }

  /**
   * Envoy's priority load and panic, recomputed on every ejection and unejection: levels take load
   * by health, and a level below minHealthPercent healthy balances over all its endpoints.
   */
  #refreshHealth(): void {
    this.#seenOutlierGeneration = this.#outlier?.generation ?? 0
    const levels = this.#levels
    const counts = levels.map((level) => {
      let healthy = 0
      for (const e of level.endpoints) if (!e.ejected) healthy++
      return { total: level.endpoints.length, healthy }
    })
    this.#load = priorityLoad(counts, this.#outlier?.config.minHealthPercent ?? 0)
    for (let i = 0; i < levels.length; i++) levels[i].refresh(this.#load.panic[i])
  }

  /**
   * The endpoint for the next request, or undefined when none is available (503 UH). `skipLevels`
   * (a bit per priority level) is for retries: those levels get no load (Envoy's previous_priorities).
   */
  pick(request: LbRequest, skipLevels = 0): UpstreamEndpoint | undefined {
    if (this.model.discovery === 'ORIGINAL_DST') return this.#originalDestinationHost(request)
    // Another worker ejected or brought back an endpoint: refresh this worker's view of health.
    if (this.#outlier !== undefined && this.#outlier.generation !== this.#seenOutlierGeneration) {
      this.#refreshHealth()
    }
    if (this.#nextWarmupUpdate !== 0) {
      const now = performance.now()
      if (now >= this.#nextWarmupUpdate) this.#updateWarmupWeights(now)
    }
    const levels = this.#levels
    if (levels.length === 1) return levels[0].pick(request)
    const load =
      skipLevels === 0 ? this.#load.load : loadExcluding(this.#load.health, skipLevels, this.#load.load)
    return levels[levelFor(load, this.#levelPoint(request))]?.pick(request)
  }

  /**
   * Envoy's ORIGINAL_DST load balancer: the host is the connection's original destination, made when first
   * seen and removed once unused for a cleanup interval (Envoy's cleanup_interval, 5 s by default). Without
   * an original destination (the connection was not captured) there is no host: 503 UH, as in Envoy.
   */
  #originalDestinationHost(request: LbRequest): UpstreamEndpoint | undefined {
    const destination = originalDestination(request.req.socket)
    if (destination === undefined) return undefined
    const key = `${destination.address}|${destination.port}`
    const known = this.#originalHosts.get(key)
    if (known !== undefined) {
      known.used = true
      return known.endpoint
    }
    const settings = this.#settings
    if (settings === undefined) return undefined
    const bind = this.model.upstreamBind
    const sourceAddress =
      bind === undefined ? undefined : isIP(destination.address) === 6 ? bind.ipv6 : bind.ipv4
    const endpoint = new UpstreamEndpoint(
      destination.address,
      destination.port,
      1,
      sourceAddress === undefined ? settings : { ...settings, sourceAddress },
      this.breaker,
      undefined,
      // Per worker: destinations are unbounded, the shared table is not.
      undefined,
      this.stats,
    )
    this.#originalHosts.set(key, { endpoint, used: true })
    this.#originalSweep ??= setInterval(this.#sweepOriginalHosts, originalHostCleanupMs).unref()
    return endpoint
  }

  readonly #sweepOriginalHosts = (): void => {
    for (const [key, host] of this.#originalHosts) {
      if (host.used || host.endpoint.activeRequests > 0) {
        host.used = false
        continue
      }
      this.#originalHosts.delete(key)
      void host.endpoint.close()
    }
    if (this.#originalHosts.size === 0) {
      clearInterval(this.#originalSweep)
      this.#originalSweep = undefined
    }
  }

  /** Each priority level's health in percent (1.4 × healthy share, at most 100). */
  get levelHealth(): readonly number[] {
    return this.#load.health
  }

  /** A point in [0, 100) choosing the level: the request's hash for hash balancers (Envoy), else random. */
  #levelPoint(request: LbRequest): number {
    const lb = this.model.policy.loadBalancer
    if (lb.kind === 'RING_HASH' || lb.kind === 'MAGLEV') {
      // Envoy's choosePriority(hash % 100 + 1): the 64-bit request hash, reduced from its halves.
      const hash = this.#levelHash
      if (requestHash(lb.hashKey, request, hash)) return mod64(hash[0], hash[1], 100)
    }
    return Math.floor(Math.random() * 100)
  }

  /** Slow start: new endpoints' weights follow the ramp; recomputed every 1% of the window (10 ms to 1 s). */
  #updateWarmupWeights(now: number): void {
    const warmup = this.model.policy.warmup
    let warming = false
    for (const e of this.endpoints) {
      const elapsed = e.addedAt === undefined || warmup === undefined ? Infinity : now - e.addedAt
      const factor = warmup === undefined ? 1 : slowStartFactor(elapsed, warmup)
      if (factor < 1) warming = true
      e.weight = Math.max(1, e.configuredWeight) * factor
    }
    const step = warmup === undefined ? 0 : Math.min(1000, Math.max(10, warmup.durationMs / 100))
    this.#nextWarmupUpdate = warming ? now + step : 0
    for (let i = 0; i < this.#levels.length; i++) this.#levels[i].refresh(this.#load.panic[i] ?? false)
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

  /** Stops the outlier sweep and DNS resolutions, and closes every pool once its requests finish. */
  async close(): Promise<void> {
    this.#outlier?.stop()
    clearInterval(this.#originalSweep)
    const originalHosts = [...this.#originalHosts.values()].map((h) => h.endpoint.close())
    this.#originalHosts.clear()
    await Promise.all(originalHosts)
    for (const target of this.#dnsTargets.values()) target.stop()
    await Promise.all(this.endpoints.map((e) => e.close()))
  }
}

/** Envoy's ORIGINAL_DST cleanup_interval default: an original destination unused this long loses its host. */
const originalHostCleanupMs = 5000

/** The SharedCounters key of a cluster's circuit-breaker block (readers find it by name). */
export function breakerKey(clusterName: string): string {
  return `cluster|${clusterName}`
}

/** The SharedCounters key of a cluster's outlier detector block. */
export function outlierKey(clusterName: string): string {
  return `outlier|${clusterName}`
}

/** The cluster's endpoints grouped into their priority levels (the model numbers them without gaps). */
function hostSets(model: ClusterModel, endpoints: readonly UpstreamEndpoint[]): HostSet<UpstreamEndpoint>[] {
  const levels = endpoints.reduce((max, e) => Math.max(max, e.priority + 1), 1)
  const byLevel = Array.from({ length: levels }, (): UpstreamEndpoint[] => [])
  for (const e of endpoints) byLevel[e.priority].push(e)
  const weighted = model.policy.warmup !== undefined
  return byLevel.map((members, level) => new HostSet(level, members, model.policy.loadBalancer, weighted))
}

/**
 * Envoy's max_connections is one circuit breaker for the whole cluster; each endpoint's pool gets an
 * equal share of it (at least one connection), so the cluster never holds more than the limit.
 */
export function endpointShare(pool: ConnectionPoolModel, endpoints: number): ConnectionPoolModel {
  if (pool.maxConnections >= UNLIMITED || endpoints <= 1) return pool
  return { ...pool, maxConnections: Math.max(1, Math.floor(pool.maxConnections / endpoints)) }
}
