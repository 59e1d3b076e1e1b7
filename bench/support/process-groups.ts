// The numbers of a run made of process groups (fresh processes, several rounds each): per-round ratios, each group's median, and the median over groups with its spread.
//
// Rounds that share one process share its JIT state: a process that settled into slower code stays
// slower for every round it serves (bench/results/paired-rerun-2026-12-07.md, one run 0.897× with every
// round of it slow, the next two 0.985× and 1.031×). So a group's rounds are summarised by their median
// first, and the groups by the median of those: one slow process is one outlying group, outvoted from
// three groups on, and the lowest and highest group show how far the processes disagreed.

import { median } from './stats.ts'

/** `values[group][round][system]`: one number per system per round, the rounds of each group of processes. */
export type GroupedValues = readonly (readonly (readonly number[])[])[]

export interface GroupedRatios {
  /** Per group, each round's value of the system ÷ the reference system's in the same round. */
  readonly perRound: readonly (readonly number[])[]
  /** Per group, the median of its per-round ratios. */
  readonly groupMedians: readonly number[]
  /** The median of the group medians. */
  readonly median: number
  /** The lowest and the highest group median. */
  readonly lowest: number
  readonly highest: number
}

/** The ratios of `system` to `reference` (indices into each round), round by round, group by group. */
export function groupedRatios(values: GroupedValues, system: number, reference = 0): GroupedRatios {
  const perRound = values.map((rounds) => rounds.map((round) => round[system] / round[reference]))
  const groupMedians = perRound.map((ratios) => median(ratios))
  return {
    perRound,
    groupMedians,
    median: median(groupMedians),
    lowest: Math.min(...groupMedians),
    highest: Math.max(...groupMedians),
  }
}

/** The median over groups of each group's median of `system`'s values (req/s, CPU per request). */
export function medianOverGroups(values: GroupedValues, system: number): number {
  return median(values.map((rounds) => median(rounds.map((round) => round[system]))))
}
