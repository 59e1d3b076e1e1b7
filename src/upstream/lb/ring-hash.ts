// Ring-hash load balancing (Envoy's RING_HASH): endpoints own points on a hash ring built at config load.

import type { HashKeyModel } from '../../config/model.ts'
import { hash32 } from './hash.ts'
import { type LbRequest, requestHash } from './hash-policy.ts'
import type { LbEndpoint, LoadBalancer, Random } from './load-balancer.ts'

/** Envoy's maximum_ring_size default. */
const MAX_RING_SIZE = 8 * 1024 * 1024
/** Ring entries pack `hash * 2^20 + endpoint index` into one double (exact below 2^53). */
const INDEX_SPAN = 1 << 20

/** A sorted ring of 32-bit points, each owned by an endpoint index. */
export class HashRing {
  readonly points: Uint32Array
  readonly owners: Uint32Array

  /**
   * Envoy's construction: every endpoint gets points in proportion to its weight, scaled so that the
   * lightest gets ceil(minimumRingSize × its share); point j of an endpoint is hash(`address:port_j`).
   */
  constructor(
    endpoints: readonly LbEndpoint[],
    minimumRingSize: number,
    weights: readonly number[] = endpoints.map((e) => e.weight),
  ) {
    const n = Math.min(endpoints.length, INDEX_SPAN)
    const total = weights.slice(0, n).reduce((sum, w) => sum + w, 0)
    let minShare = 1
    for (let i = 0; i < n; i++) if (weights[i] > 0) minShare = Math.min(minShare, weights[i] / total)
    const scale = Math.min(Math.ceil(minShare * minimumRingSize) / minShare, MAX_RING_SIZE)
    const keys: number[] = []
    let current = 0
    let target = 0
    for (let i = 0; i < n; i++) {
      target += (scale * weights[i]) / total
      const prefix = `${endpoints[i].hostPort}_`
      for (let j = 0; current < target; j++, current++) keys.push(hash32(prefix + j) * INDEX_SPAN + i)
    }
    const sorted = Float64Array.from(keys).sort()
    this.points = new Uint32Array(sorted.length)
    this.owners = new Uint32Array(sorted.length)
    for (let k = 0; k < sorted.length; k++) {
      this.owners[k] = sorted[k] % INDEX_SPAN
      this.points[k] = (sorted[k] - this.owners[k]) / INDEX_SPAN
    }
  }

  /** The index of the endpoint owning the first point at or after `hash` (wrapping around). */
  lookup(hash: number): number {
    const points = this.points
    let lo = 0
    let hi = points.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (points[mid] < hash) lo = mid + 1
      else hi = mid
    }
    return this.owners[lo === points.length ? 0 : lo]
  }
}

export class RingHash implements LoadBalancer {
  readonly #key: HashKeyModel
  readonly #minimumRingSize: number
  readonly #random: Random
  #list: readonly LbEndpoint[] = []
  #ring: HashRing | undefined

  constructor(key: HashKeyModel, minimumRingSize: number, random: Random = Math.random) {
    this.#key = key
    this.#minimumRingSize = minimumRingSize
    this.#random = random
  }

  update(endpoints: readonly LbEndpoint[], weights?: readonly number[]): void {
    this.#list = endpoints
    this.#ring = new HashRing(endpoints, this.#minimumRingSize, weights)
  }

  pick<E extends LbEndpoint>(endpoints: readonly E[], request: LbRequest): E {
    if (endpoints !== this.#list || this.#ring === undefined) this.update(endpoints)
    const hash = requestHash(this.#key, request) ?? Math.floor(this.#random() * 0x100000000)
    return endpoints[(this.#ring as HashRing).lookup(hash)]
  }
}
