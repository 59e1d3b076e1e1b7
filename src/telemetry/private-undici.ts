// A copy of undici of the span exporter's own, so that its rare exports never share JIT feedback with the data path's undici.

import { createRequire } from 'node:module'
import { dirname } from 'node:path'

type Undici = typeof import('undici')

const require = createRequire(import.meta.url)

/**
 * Loads undici's modules a second time, as new functions: V8 keeps type feedback and optimized code per
 * function, so an export's Client, handler and Buffer body cannot turn the data path's optimized undici code
 * generic, as the same Client did when it shared the data path's copy (bench/results/instructions-2026-12-07-tracing.md,
 * section 3). The CommonJS cache is set back as it was, so every other import still gets the data path's copy.
 */
export function loadPrivateUndici(): Undici {
  const root = `${dirname(require.resolve('undici'))}/`
  const cache = require.cache
  const shared = Object.keys(cache).filter((file) => file.startsWith(root))
  const saved = shared.map((file) => [file, cache[file]] as const)
  for (const file of shared) delete cache[file]
  try {
    return require('undici') as Undici
  } finally {
    for (const file of Object.keys(cache)) if (file.startsWith(root)) delete cache[file]
    for (const [file, module] of saved) cache[file] = module
  }
}
