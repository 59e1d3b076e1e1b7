// Runs a measurement over several systems in interleaved rounds (A B C, B C A, …) and takes each metric's median.

import type { Runs } from '../report/results.ts'
import { medianRecord, rotate } from '../support/stats.ts'

export interface Interleaved<T> {
  readonly results: Record<string, Runs<T>>
  /** System name → error message, for systems whose runs failed (they get no results). */
  readonly failed: Record<string, string>
}

export async function interleave<S extends { readonly name: string }, T extends object>(
  what: string,
  systems: readonly S[],
  rounds: number,
  measure: (system: S) => Promise<T>,
  describe: (system: S, sample: T) => string,
): Promise<Interleaved<T>> {
  const runs = new Map<string, T[]>()
  const failed: Record<string, string> = {}
  for (let round = 0; round < rounds; round++) {
    for (const system of rotate(systems, round)) {
      if (failed[system.name] !== undefined) continue
      try {
        const sample = await measure(system)
        const list = runs.get(system.name) ?? []
        list.push(sample)
        runs.set(system.name, list)
        log(`${what} round ${round + 1}/${rounds} ${system.name}: ${describe(system, sample)}`)
      } catch (err) {
        failed[system.name] = (err as Error).message
        log(`${what} ${system.name} FAILED: ${(err as Error).message}`)
      }
    }
  }
  const results: Record<string, Runs<T>> = {}
  for (const system of systems) {
    const list = runs.get(system.name)
    if (list !== undefined && list.length > 0)
      results[system.name] = { runs: list, median: medianRecord(list) }
  }
  return { results, failed }
}

export function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`)
}
