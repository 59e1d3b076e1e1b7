// fast-check parameters for the fuzz properties: a short CI run by default; a time budget, seed and path from the environment for long runs and replays.

import type { Parameters } from 'fast-check'

/** Seconds each property may run (set by `npm run fuzz`); unset: the CI run's fixed number of runs. */
const budgetSeconds = Number(process.env.OUTRIGGER_FUZZ_SECONDS ?? '0')
const seedText = process.env.OUTRIGGER_FUZZ_SEED
const replayPath = process.env.OUTRIGGER_FUZZ_PATH

/**
 * The CI run's seed: fixed, so that a red CI is a change's doing and not the draw's. New inputs come from
 * the long runs (a fresh seed each) and from `OUTRIGGER_FUZZ_SEED=<n>`; each finding becomes a regression test.
 */
const ciSeed = 20261207

function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff)
}

/** True when `npm run fuzz` gave this run a time budget. */
export const longRun = budgetSeconds > 0

/**
 * Parameters for one property: `ciRuns` runs in CI, or as many as fit in the budget on a long run. The
 * seed is printed first so that a failure in CI can be replayed with `npm run fuzz -- --seed <n>` (fast-check's
 * own failure report adds the seed and the shrink path).
 */
export function fuzzParameters<T>(property: string, ciRuns: number): Parameters<T> {
  const seed = seedText !== undefined ? Number(seedText) : longRun ? randomSeed() : ciSeed
  console.log(`fuzz ${property}: seed ${seed}${longRun ? `, ${budgetSeconds} s` : `, ${ciRuns} runs`}`)
  const replay = replayPath === undefined ? {} : { path: replayPath }
  if (!longRun) return { seed, numRuns: ciRuns, ...replay }
  return {
    seed,
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: budgetSeconds * 1000,
    markInterruptAsFailure: false,
    ...replay,
  }
}

/** The vitest timeout of a property's test: its CI bound, or the long run's budget and a margin to shrink. */
export function fuzzTimeout(ciMs: number): number {
  return longRun ? budgetSeconds * 1000 + 120_000 : ciMs
}
