// Child process for the scale case: times loading (YAML parse + validation) and compiling a bootstrap's resources into a Model.
// Usage: node bench/workloads/compile-child.ts <bootstrap.yaml> <repeats>; prints one JSON line.

import { loadBootstrap } from '../../src/bootstrap/load.ts'
import { compileModel } from '../../src/config/compile.ts'
import { loadResources } from '../../src/config/load.ts'

export interface CompileTimes {
  resources: number
  /** Milliseconds of each repeat; the first is cold (JIT not warmed), as at start-up. */
  readonly loadMs: number[]
  readonly compileMs: number[]
  heapUsedMiB: number
}

const [file, repeatsText] = process.argv.slice(2)
const bootstrap = await loadBootstrap(file)
const times: CompileTimes = { resources: 0, loadMs: [], compileMs: [], heapUsedMiB: 0 }
for (let i = 0; i < Math.max(1, Number(repeatsText)); i++) {
  const t0 = performance.now()
  const loaded = await loadResources(bootstrap.resources, bootstrap.node.namespace)
  const t1 = performance.now()
  const errors = loaded.messages.filter((m) => m.severity === 'error')
  if (errors.length > 0)
    throw new Error(`config errors: ${errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join('; ')}`)
  compileModel({
    bootstrap,
    resources: loaded.resources,
    files: loaded.files,
    warnings: loaded.messages.filter((m) => m.severity === 'warning'),
    version: i + 1,
  })
  const t2 = performance.now()
  times.resources = loaded.resources.length
  times.loadMs.push(t1 - t0)
  times.compileMs.push(t2 - t1)
}
times.heapUsedMiB = process.memoryUsage().heapUsed / (1024 * 1024)
process.stdout.write(`${JSON.stringify(times)}\n`)
