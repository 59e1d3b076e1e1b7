// Maglev load balancing (Envoy's MAGLEV): a lookup table filled from per-endpoint permutations at config load.

import type { HashKeyModel } from '../../config/model.ts'
import { hash32 } from './hash.ts'
import { type LbRequest, requestHash } from './hash-policy.ts'
import type { LbEndpoint, LoadBalancer, Random } from './load-balancer.ts'

/** A Maglev table: `size` (a prime) slots, each holding an endpoint index. */
export class MaglevTable {
  readonly slots: Int32Array

  /**
   * Envoy's weighted Maglev: each endpoint walks its permutation (offset + skip × j) mod size and takes
   * the first free slot; per round, an endpoint takes a turn only as often as its weight allows
   * relative to the heaviest, so slot counts follow weights.
   */
  constructor(
    endpoints: readonly LbEndpoint[],
    size: number,
    weights: readonly number[] = endpoints.map((e) => e.weight),
  ) {
    const slots = new Int32Array(size).fill(-1)
    this.slots = slots
    const n = endpoints.length
    if (n === 0) return
    const total = weights.reduce((sum, w) => sum + w, 0)
    const weight = weights.map((w) => w / total)
    const maxWeight = weight.reduce((max, w) => Math.max(max, w), 0)
    const offset = endpoints.map((e) => hash32(e.hostPort, 0) % size)
    const skip = endpoints.map((e) => (hash32(e.hostPort, 1) % (size - 1)) + 1)
    const next = new Array<number>(n).fill(0)
    const targetWeight = new Array<number>(n).fill(0)
    let filled = 0
    for (let round = 1; filled < size; round++) {
      for (let i = 0; i < n && filled < size; i++) {
        if (round * weight[i] < targetWeight[i]) continue
        targetWeight[i] += maxWeight
        let slot = (offset[i] + skip[i] * next[i]) % size
        while (slots[slot] !== -1) {
          next[i]++
          slot = (offset[i] + skip[i] * next[i]) % size
        }
        slots[slot] = i
        next[i]++
        filled++
      }
    }
  }

  lookup(hash: number): number {
    return this.slots[hash % this.slots.length]
  }
}

export class Maglev implements LoadBalancer {
  readonly #key: HashKeyModel
  readonly #tableSize: number
  readonly #random: Random
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
    const hash = requestHash(this.#key, request) ?? Math.floor(this.#random() * 0x100000000)
    return endpoints[(this.#table as MaglevTable).lookup(hash)]
  }
}
