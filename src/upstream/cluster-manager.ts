// Owns every cluster; a new Model re-applies clusters that stay and retires those that leave.

import type { ClusterModel, Model } from '../config/model.ts'
import { defaultLimits } from '../protocol/limits.ts'
import { SharedCounters } from '../shared/shared-counters.ts'
import { UpstreamTls } from '../tls/upstream-tls.ts'
import { Cluster } from './cluster.ts'
import { DnsResolver } from './dns-resolver.ts'

/**
 * A cluster's run-time object (endpoints, pools, load balancer, breakers) is built when it is first
 * asked for: a mesh of thousands of services keeps only the compiled models of those no request used.
 */
export class ClusterManager {
  /** Circuit breakers, host counters and outlier state of every cluster: shared by all worker threads. */
  readonly counters: SharedCounters
  #models: ReadonlyMap<string, ClusterModel> = new Map()
  #clusters = new Map<string, Cluster>()
  /** Clusters a reload removed, kept open for requests of older models until their close timer fires. */
  #retired = new Map<string, Cluster>()
  #retireMs = 0
  /** Resolves the endpoint names of every DNS cluster (the bootstrap's `dns` settings). */
  readonly resolver: DnsResolver
  /** The client TLS of every cluster's TLS endpoints (DestinationRule tls, auto-mTLS). */
  readonly upstreamTls: UpstreamTls

  /** The largest response head every cluster's pools accept (bootstrap `limits.maxResponseHeadersKb`). */
  readonly maxResponseHeadersBytes: number

  /** `counters`: the proxy's table (the main thread's, shared by every worker); a one-thread table by default. */
  constructor(
    resolver: DnsResolver = new DnsResolver(),
    upstreamTls: UpstreamTls = new UpstreamTls(),
    counters: SharedCounters = SharedCounters.create(undefined, false),
    maxResponseHeadersBytes = defaultLimits.maxResponseHeadersBytes,
  ) {
    this.resolver = resolver
    this.upstreamTls = upstreamTls
    this.counters = counters
    this.maxResponseHeadersBytes = maxResponseHeadersBytes
  }

  /** The cluster `name` of the current model. */
  get(name: string): Cluster | undefined {
    return this.#clusters.get(name) ?? this.#materialize(name)
  }

  /**
   * The cluster `name` as `model` (the one a request started on) has it: the current cluster of that name,
   * or, when a reload removed it since, the retired one, so the request does not lose its cluster midway.
   * Undefined when `model` has no such cluster, whatever a newer model holds.
   */
  forModel(model: Model, name: string): Cluster | undefined {
    // A request on the current model (nearly all of them): its clusters are this manager's.
    if (model.clusters === this.#models) return this.get(name)
    const clusterModel = model.clusters.get(name)
    if (clusterModel === undefined) return undefined
    const current = this.get(name)
    if (current !== undefined) return current
    const retired = this.#retired.get(name)
    if (retired !== undefined || this.#retireMs <= 0) return retired
    const cluster = new Cluster(
      clusterModel,
      this.resolver,
      this.upstreamTls,
      undefined,
      this.maxResponseHeadersBytes,
    )
    this.#retire(name, cluster)
    return cluster
  }

  /** The cluster `name` if this worker has built it already (readers must not build clusters). */
  built(name: string): Cluster | undefined {
    return this.#clusters.get(name)
  }

  /** Every cluster of the model, in model order. */
  get clusters(): Iterable<Cluster> {
    const all: Cluster[] = []
    for (const name of this.#models.keys()) {
      const cluster = this.get(name)
      if (cluster !== undefined) all.push(cluster)
    }
    return all
  }

  /**
   * Applies a new model: a cluster keeps its pools, counters and outlier state while its name stays. One
   * the model drops is retired: requests that started on an older model may still use it for `retireMs`
   * (the runtime passes its drain time, what a removed listener gives its requests), then it closes.
   * DNS clusters are built at once and start resolving, as Envoy warms STRICT_DNS and LOGICAL_DNS
   * clusters before using them; the promise settles when every one has been resolved once.
   */
  update(model: Model, retireMs = 0): Promise<void> {
    this.#retireMs = retireMs
    const clusters = new Map<string, Cluster>()
    for (const [name, cluster] of this.#clusters) {
      const cm = model.clusters.get(name)
      if (cm === undefined) {
        this.#retire(name, cluster)
        continue
      }
      cluster.apply(cm)
      clusters.set(name, cluster)
    }
    // Slow start ramps up endpoints added to a running cluster: one with warmup is built from the
    // model it had, so the endpoints this model adds still warm up.
    for (const [name, cm] of model.clusters) {
      const previous = this.#models.get(name)
      if (cm.policy.warmup === undefined || previous === undefined || clusters.has(name)) continue
      const cluster = new Cluster(
        previous,
        this.resolver,
        this.upstreamTls,
        this.counters,
        this.maxResponseHeadersBytes,
      )
      cluster.apply(cm)
      clusters.set(name, cluster)
    }
    this.#models = model.clusters
    this.#clusters = clusters
    const warming: Promise<void>[] = []
    for (const [name, cm] of model.clusters) {
      if (cm.discovery === undefined) continue
      const cluster = this.get(name)
      if (cluster !== undefined) warming.push(cluster.warmed)
    }
    return Promise.all(warming).then(() => {})
  }

  async close(): Promise<void> {
    const all = [...this.#clusters.values(), ...this.#retired.values()]
    this.#models = new Map()
    this.#clusters.clear()
    this.#retired.clear()
    this.upstreamTls.close()
    await Promise.all(all.map((c) => c.close()))
  }

  #retire(name: string, cluster: Cluster): void {
    if (this.#retireMs <= 0) {
      void cluster.close()
      return
    }
    const previous = this.#retired.get(name)
    if (previous !== undefined && previous !== cluster) void previous.close()
    this.#retired.set(name, cluster)
    const timer = setTimeout(() => {
      // Not there any more: closed already, by close() or by a later retirement of the same name.
      if (this.#retired.get(name) !== cluster) return
      this.#retired.delete(name)
      void cluster.close()
    }, this.#retireMs)
    timer.unref()
  }

  #materialize(name: string): Cluster | undefined {
    const model = this.#models.get(name)
    if (model === undefined) return undefined
    const cluster = new Cluster(
      model,
      this.resolver,
      this.upstreamTls,
      this.counters,
      this.maxResponseHeadersBytes,
    )
    this.#clusters.set(name, cluster)
    return cluster
  }
}
