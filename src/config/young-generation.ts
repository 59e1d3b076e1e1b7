// Holds V8's young generation at its current size while config loads, so one big compile does not leave it grown.

import { setFlagsFromString } from 'node:v8'

/** V8's default: the young generation doubles when more than its size survived since it last grew. */
const DEFAULT_GROWTH_FACTOR = 2

/** A growth factor set on the command line or in NODE_OPTIONS is the operator's choice: leave it alone. */
const operatorChoseGrowth = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((arg) =>
  /semi[-_]space/.test(arg),
)

/**
 * Runs `work` with young-generation growth off. Much of what a load and compile of thousands of
 * resources allocates survives until the model is built, which would otherwise double the young
 * generation up to its maximum (64 MiB semi-spaces, 128 MiB resident), and an idle proxy never shrinks
 * it back. Held, those survivors are promoted to the old generation instead.
 */
export async function withYoungGenerationHeld<T>(work: () => Promise<T>): Promise<T> {
  if (operatorChoseGrowth) return work()
  setFlagsFromString('--semi-space-growth-factor=1')
  try {
    return await work()
  } finally {
    setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`)
  }
}
