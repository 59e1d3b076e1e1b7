// One priority level of a cluster (Envoy's HostSet): its endpoints by locality, the ones to balance over, and their balancers.

import type { LoadBalancerModel } from '../../config/model.ts'
import { createLoadBalancer } from './create-load-balancer.ts'
import type { LbRequest } from './hash-policy.ts'
import type { LbEndpoint, LoadBalancer } from './load-balancer.ts'
import { normalizedWeights } from './normalized-weights.ts'
import { OVERPROVISIONING_FACTOR } from './priority-load.ts'

/** What a host set reads from an endpoint beyond what its balancers read. */
export interface HostSetEndpoint extends LbEndpoint {
  readonly ejected: boolean
  readonly locality: string
  /** The weight of the endpoint's locality (the same for every endpoint of it). */
  readonly localityWeight: number
}

/** The endpoints of one locality within the level, with the balancer that picks among its healthy ones. */
interface Locality<E extends HostSetEndpoint> {
  readonly weight: number
  readonly endpoints: E[]
  healthy: E[]
  readonly lb: LoadBalancer
  /** Envoy's effective locality weight: weight × min(1, 1.4 × healthy / total). */
  effectiveWeight: number
  /** Smooth weighted round robin state over the effective weights. */
  current: number
}

/**
 * With endpoints in two or more localities, a request first picks a locality in proportion to its
 * effective weight (Envoy's locality-weighted balancing, which Istio turns on), then an endpoint
 * within it. A level in panic balances over all its endpoints and ignores localities, as Envoy does.
 * Hash balancers never pick a locality: their ring or table is built over the whole level, each
 * endpoint weighted by its share of its locality's weight (Envoy's normalizeLocalityWeights).
 */
export class HostSet<E extends HostSetEndpoint> {
  readonly priority: number
  readonly endpoints: readonly E[]
  readonly #localities: Locality<E>[]
  readonly #hashing: boolean
  /** The balancer over the whole level: one locality, panic, or hashing. */
  readonly #lb: LoadBalancer
  /** What the level balances over: its healthy endpoints, or all of them in panic. */
  #available: readonly E[] = []
  #byLocality = false

  constructor(priority: number, endpoints: readonly E[], model: LoadBalancerModel, weighted: boolean) {
    this.priority = priority
    this.endpoints = endpoints
    this.#hashing = model.kind === 'RING_HASH' || model.kind === 'MAGLEV'
    this.#lb = createLoadBalancer(model, endpoints, weighted)
    const byName = new Map<string, Locality<E>>()
    for (const e of endpoints) {
      const locality = byName.get(e.locality)
      if (locality !== undefined) {
        locality.endpoints.push(e)
        continue
      }
      byName.set(e.locality, {
        weight: e.localityWeight,
        endpoints: [e],
        healthy: [],
        lb: this.#hashing ? this.#lb : createLoadBalancer(model, endpoints, weighted),
        effectiveWeight: 0,
        current: 0,
      })
    }
    this.#localities = [...byName.values()]
    this.refresh(false)
  }

  /** Recomputes what to balance over after a health change (or a weight change during warmup). */
  refresh(panic: boolean): void {
    let healthyCount = 0
    for (const locality of this.#localities) {
      locality.healthy = locality.endpoints.filter((e) => !e.ejected)
      const availability = Math.min(
        1,
        (OVERPROVISIONING_FACTOR / 100) * (locality.healthy.length / locality.endpoints.length),
      )
      locality.effectiveWeight = locality.weight * availability
      locality.current = 0
      healthyCount += locality.healthy.length
      if (!this.#hashing) locality.lb.update?.(locality.healthy)
    }
    this.#available =
      panic || healthyCount === this.endpoints.length
        ? this.endpoints
        : this.endpoints.filter((e) => !e.ejected)
    this.#byLocality = !panic && !this.#hashing && this.#localities.length > 1
    if (this.#hashing && this.#localities.length > 1) this.#updateHashByLocality(panic)
    else this.#lb.update?.(this.#available)
  }

  /** An endpoint for the request, or undefined when the level has none to offer. */
  pick(request: LbRequest): E | undefined {
    if (!this.#byLocality) {
      const available = this.#available
      return available.length === 0 ? undefined : this.#lb.pick(available, request)
    }
    const locality = this.#pickLocality()
    return locality === undefined ? undefined : locality.lb.pick(locality.healthy, request)
  }

  /** Smooth weighted round robin over the effective weights (Envoy schedules localities by EDF). */
  #pickLocality(): Locality<E> | undefined {
    let best: Locality<E> | undefined
    let total = 0
    for (const locality of this.#localities) {
      if (locality.effectiveWeight === 0) continue
      locality.current += locality.effectiveWeight
      total += locality.effectiveWeight
      if (best === undefined || locality.current > best.current) best = locality
    }
    if (best !== undefined) best.current -= total
    return best
  }

  /**
   * Envoy's normalizeLocalityWeights: the ring or table holds the level's endpoints locality by
   * locality, each weighted weight × (locality weight / sum of locality weights) / (sum of its
   * locality's weights); a locality of weight 0 adds nothing.
   */
  #updateHashByLocality(panic: boolean): void {
    let localityTotal = 0
    for (const locality of this.#localities) localityTotal += locality.weight
    const members: E[] = []
    const weights: number[] = []
    for (const locality of this.#localities) {
      if (locality.weight === 0 || localityTotal === 0) continue
      const hosts = panic ? locality.endpoints : locality.healthy
      members.push(...hosts)
      normalizedWeights(hosts, locality.weight / localityTotal, weights)
    }
    this.#available = members
    this.#lb.update?.(members, weights)
  }
}
