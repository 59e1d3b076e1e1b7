// When each reload was written and when each protocol's traffic first carried it: the proof that reloads take effect.

import type { ProtocolName } from './tally.ts'

export interface ReloadSeen {
  readonly generation: number
  /** Milliseconds from writing the file to the first response with this generation, per protocol (undefined: never). */
  readonly delayMs: Partial<Record<ProtocolName, number>>
}

export class Generations {
  readonly #written = new Map<number, number>()
  readonly #firstSeen = new Map<ProtocolName, Map<number, number>>()
  readonly #latest = new Map<ProtocolName, number>()

  written(generation: number): void {
    this.#written.set(generation, performance.now())
  }

  /** A response of `protocol` carried `value` in the generation header. */
  seen(protocol: ProtocolName, value: string | undefined): void {
    const generation = Number(value)
    if (!Number.isInteger(generation)) return
    if (generation <= (this.#latest.get(protocol) ?? -1)) return
    this.#latest.set(protocol, generation)
    let seen = this.#firstSeen.get(protocol)
    if (seen === undefined) {
      seen = new Map()
      this.#firstSeen.set(protocol, seen)
    }
    seen.set(generation, performance.now())
  }

  /** Every reload after the first generation, with how long each protocol took to see it (or a later one). */
  reloads(protocols: readonly ProtocolName[]): ReloadSeen[] {
    const out: ReloadSeen[] = []
    for (const [generation, at] of this.#written) {
      if (generation === 0) continue
      const delayMs: Partial<Record<ProtocolName, number>> = {}
      for (const protocol of protocols) {
        let first: number | undefined
        for (const [g, t] of this.#firstSeen.get(protocol) ?? []) {
          if (g >= generation && (first === undefined || t < first)) first = t
        }
        if (first !== undefined) delayMs[protocol] = Math.max(0, first - at)
      }
      out.push({ generation, delayMs })
    }
    return out
  }
}
