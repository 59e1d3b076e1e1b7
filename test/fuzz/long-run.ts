// `npm run fuzz -- --minutes 10 [--seed n] [--path p] [name…]`: runs the fuzz properties under test/fuzz/ with a time budget shared between them, one file at a time.

import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

const root = resolve(import.meta.dirname, '..', '..')
const { values, positionals } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    path: { type: 'string' },
  },
  allowPositionals: true,
})

const directory = join(root, 'test', 'fuzz')
const files = readdirSync(directory)
  .filter((name) => name.endsWith('.fuzz.test.ts'))
  .filter((name) => positionals.length === 0 || positionals.some((wanted) => name.includes(wanted)))
  .map((name) => join('test', 'fuzz', name))
if (files.length === 0) {
  console.error(`no fuzz file matches ${positionals.join(' ')}`)
  process.exit(2)
}
// Each property asks fuzzParameters() once: the budget is split evenly between them.
const properties = files.reduce(
  (count, file) => count + (readFileSync(join(root, file), 'utf8').match(/fuzzParameters\(/g)?.length ?? 0),
  0,
)
const minutes = Number(values.minutes)
if (!(minutes > 0)) {
  console.error('--minutes must be a positive number')
  process.exit(2)
}
const seconds = Math.max(1, Math.floor((minutes * 60) / properties))
console.log(`fuzz: ${properties} properties in ${files.length} files, ${seconds} s each`)

const env: NodeJS.ProcessEnv = { ...process.env, OUTRIGGER_FUZZ_SECONDS: String(seconds) }
if (values.seed !== undefined) env.OUTRIGGER_FUZZ_SEED = values.seed
if (values.path !== undefined) env.OUTRIGGER_FUZZ_PATH = values.path
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
const child = spawn(process.execPath, [vitest, 'run', '--no-file-parallelism', ...files], {
  cwd: root,
  env,
  stdio: 'inherit',
})
child.on('exit', (code) => process.exit(code ?? 1))
