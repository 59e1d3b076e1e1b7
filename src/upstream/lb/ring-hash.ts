// Ring-hash load balancing (Envoy's RING_HASH): endpoints own points on a 64-bit hash ring built at config load.

import type { HashKeyModel } from '../../config/model.ts'
import { xxHash64Into } from './hash.ts'
import { type LbRequest, randomHash, requestHash } from './hash-policy.ts'
import type { LbEndpoint, LoadBalancer, Random } from './load-balancer.ts'
import { normalizedWeights } from './normalized-weights.ts'

/** Envoy's maximum_ring_size default (Istio does not set it). */
export const MAX_RING_SIZE = 8 * 1024 * 1024

/**
 * A sorted ring of 64-bit points (each as its high and low 32-bit halves), each owned by an endpoint
 * index. Envoy's construction (source/extensions/load_balancing_policies/ring_hash/ring_hash_lb.cc):
 * scale = min(ceil(minWeight × minimumRingSize) / minWeight, maximumRingSize) for the normalized
 * weights; walking the endpoints in order, running sums hand each one points while
 * `current < (target += scale × weight)`; point j of an endpoint is xxHash64(`<address>:<port>_<j>`).
 */
export class HashRing {
  readonly hi: Uint32Array
  readonly lo: Uint32Array
  readonly owners: Uint32Array

  constructor(
    endpoints: readonly LbEndpoint[],
    minimumRingSize: number,
    weights: readonly number[] = normalizedWeights(endpoints),
    maximumRingSize = MAX_RING_SIZE,
  ) {
    let minWeight = 1
    for (let i = 0; i < endpoints.length; i++) minWeight = Math.min(minWeight, weights[i])
    const scale = Math.min(Math.ceil(minWeight * minimumRingSize) / minWeight, maximumRingSize)
    const hi: number[] = []
    const lo: number[] = []
    const owner: number[] = []
    const point = new Uint32Array(2)
    let current = 0
    let target = 0
    for (let i = 0; i < endpoints.length; i++) {
      const prefix = `${endpoints[i].hostPort}_`
      target += scale * weights[i]
      for (let j = 0; current < target; j++, current++) {
        xxHash64Into(prefix + j, point)
        hi.push(point[0])
        lo.push(point[1])
        owner.push(i)
      }
    }
    const count = owner.length
    const order = Array.from({ length: count }, (_, k) => k).sort((a, b) => hi[a] - hi[b] || lo[a] - lo[b])
    this.hi = new Uint32Array(count)
    this.lo = new Uint32Array(count)
    this.owners = new Uint32Array(count)
    for (let k = 0; k < count; k++) {
      this.hi[k] = hi[order[k]]
      this.lo[k] = lo[order[k]]
      this.owners[k] = owner[order[k]]
    }
  }

  get size(): number {
    return this.owners.length
  }

  /**
   * The index of the endpoint owning the first point at or after the hash, wrapping to the first
   * point: Envoy's Ring::chooseHost, a port of ketama's binary search, with 64-bit compares done on halves.
   */
  lookup(hashHi: number, hashLo: number): number {
    const hi = this.hi
    const lo = this.lo
    const n = hi.length
    let low = 0
    let high = n
    let mid = 0
    for (;;) {
      mid = (low + high) >> 1
      if (mid === n) {
        mid = 0
        break
      }
      // hash <= point[mid] && hash > point[mid - 1] (point[-1] is 0)
      const atOrBelowMid = hashHi < hi[mid] || (hashHi === hi[mid] && hashLo <= lo[mid])
      const abovePrevious =
        mid === 0
          ? hashHi !== 0 || hashLo !== 0
          : hashHi > hi[mid - 1] || (hashHi === hi[mid - 1] && hashLo > lo[mid - 1])
      if (atOrBelowMid && abovePrevious) break
      if (!atOrBelowMid) low = mid + 1
      else high = mid - 1
      if (low > high) {
        mid = 0
        break
      }
    }
    return this.owners[mid]
  }
}

export class RingHash implements LoadBalancer {
  readonly #key: HashKeyModel
  readonly #minimumRingSize: number
  readonly #random: Random
  readonly #hash = new Uint32Array(2)
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
    const hash = this.#hash
    if (!requestHash(this.#key, request, hash)) randomHash(this.#random, hash)
    return endpoints[(this.#ring as HashRing).lookup(hash[0], hash[1])]
  }
}
