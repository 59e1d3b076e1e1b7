// Maglev load balancing (Envoy's MAGLEV): a lookup table filled from per-endpoint permutations at config load.

import type { HashKeyModel } from '../../config/model.ts'
import { mod64, xxHash64 } from './hash.ts'
import { type LbRequest, randomHash, requestHash } from './hash-policy.ts'
import type { LbEndpoint, LoadBalancer, Random } from './load-balancer.ts'
import { normalizedWeights } from './normalized-weights.ts'

/** Envoy's MaglevTable::DefaultTableSize (Istio leaves it when maglev.tableSize is 0). */
export const DEFAULT_TABLE_SIZE = 65537

/** A Maglev table: `size` (a prime) slots, each holding an endpoint index. */
export class MaglevTable {
  readonly slots: Int32Array

  /**
   * Envoy's construction (source/extensions/load_balancing_policies/maglev/maglev_lb.cc): endpoints
   * sorted by `<address>:<port>`, each with offset = xxHash64(key) mod size and skip =
   * xxHash64(key, seed 1) mod (size − 1) + 1; round after round, an endpoint whose normalized weight
   * has caught up with its target takes the next free slot of its permutation (offset + skip × j)
   * mod size, and its target grows by the heaviest weight, so slot counts follow weights.
   */
  constructor(
    endpoints: readonly LbEndpoint[],
    size: number,
    weights: readonly number[] = normalizedWeights(endpoints),
  ) {
    const slots = new Int32Array(size).fill(-1)
    this.slots = slots
    const n = endpoints.length
    if (n === 0) return
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
      byteOrder(endpoints[a].hostPort, endpoints[b].hostPort),
    )
    const bigSize = BigInt(size)
    const bigSkipSpan = BigInt(size - 1)
    const offset = order.map((i) => Number(xxHash64(endpoints[i].hostPort) % bigSize))
    const skip = order.map((i) => Number(xxHash64(endpoints[i].hostPort, 1n) % bigSkipSpan) + 1)
    const weight = order.map((i) => weights[i])
    let maxWeight = 0
    for (const w of weight) maxWeight = Math.max(maxWeight, w)
    const next = new Array<number>(n).fill(0)
    const target = new Array<number>(n).fill(0)
    let filled = 0
    for (let iteration = 1; filled < size; iteration++) {
      for (let k = 0; k < n && filled < size; k++) {
        if (iteration * weight[k] < target[k]) continue
        target[k] += maxWeight
        let slot = (offset[k] + skip[k] * next[k]) % size
        while (slots[slot] !== -1) {
          next[k]++
          slot = (offset[k] + skip[k] * next[k]) % size
        }
        slots[slot] = order[k]
        next[k]++
        filled++
      }
    }
  }

  /** The endpoint index for a 64-bit hash given as halves: slot hash mod size (Envoy's chooseHost). */
  lookup(hashHi: number, hashLo: number): number {
    return this.slots[mod64(hashHi, hashLo, this.slots.length)]
  }
}

/** std::sort's order for the host keys (bytewise; the keys are ASCII). */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

export class Maglev implements LoadBalancer {
  readonly #key: HashKeyModel
  readonly #tableSize: number
  readonly #random: Random
  readonly #hash = new Uint32Array(2)
  #list: readonly LbEndpoint[] = []
  #table: MaglevTable | undefined

  constructor(key: HashKeyModel, tableSize: number, random: Random = Math.random) {
    this.#key = key
    this.#tableSize = tableSize
    this.#random = random
  }

  update(endpoints: readonly LbEndpoint[], weights?: readonly number[]): void {
    this.#list = endpoints
    this.#table = new MaglevTable(endpoints, this.#tableSize, weights)
  }

  pick<E extends LbEndpoint>(endpoints: readonly E[], request: LbRequest): E {
    if (endpoints !== this.#list || this.#table === undefined) this.update(endpoints)
    const hash = this.#hash
    if (!requestHash(this.#key, request, hash)) randomHash(this.#random, hash)
    return endpoints[(this.#table as MaglevTable).lookup(hash[0], hash[1])]
  }
}
