// `node bench/footprint.ts [--processes 3] [--quick] [--image] | --render <json>`: Outrigger's memory and image size against issue 21's targets and anchors.
//
// Also `npm run bench -- --only footprint` (a full `npm run bench` runs it too). Measures the compiled proxy
// (`npm run build` first) with the production node flags; writes bench/results/footprint-<UTC date-time>.md
// and .json (`-short` for --quick, git-ignored). bench/README.md "Memory" describes each measurement.

import { existsSync, readdirSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { footprintTable, writeFootprint } from './report/footprint-markdown.ts'
import { type FootprintResults, footprintRows } from './report/footprint-results.ts'
import { stampFor } from './report/write.ts'
import { stopAll } from './support/children.ts'
import { footprintPlan } from './support/footprint-options.ts'
import { repoRoot } from './systems/outrigger-process.ts'
import { startScratchUpstream } from './systems/upstream.ts'
import { runFootprint } from './workloads/footprint-case.ts'
import { log } from './workloads/interleave.ts'

/** The newest modification time under `dir`, in ms. */
function newestUnder(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs)
  }
  return newest
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === '--render') {
    // Rewrites a saved run's markdown (and rows) from its JSON after a change to report/: measures nothing.
    const json = argv[1] ?? ''
    const saved = JSON.parse(await readFile(json, 'utf8')) as FootprintResults
    const results = {
      ...saved,
      rows: footprintRows(saved.meta, saved.sequences, saved.connections, saved.image),
    }
    log(`rewrote\n  ${(await writeFootprint(results, dirname(json), basename(json, '.json'))).join('\n  ')}`)
    return 0
  }
  const { plan, quick, out } = footprintPlan(argv)
  if (plan.mainScript === undefined) {
    const built = join(repoRoot, 'dist', 'main.js')
    if (!existsSync(built)) throw new Error('no dist/main.js: `npm run build` first (or --main src/main.ts)')
    if (newestUnder(join(repoRoot, 'src')) > statSync(built).mtimeMs)
      log(
        'footprint: WARNING: src/ changed after dist/main.js was built: `npm run build` measures the sources as they are',
      )
  }
  const { workDir, upstream } = await startScratchUpstream('footprint')
  try {
    const command = ['node bench/footprint.ts', ...argv].join(' ')
    const results = await runFootprint({ workDir, upstreamPort: upstream.port }, plan, command)
    const stamp = `footprint-${stampFor(new Date(), quick)}`
    const written = await writeFootprint(results, out, stamp)
    process.stdout.write(`${footprintTable(results)}\n`)
    log(`footprint: done in ${results.meta.durationSeconds.toFixed(0)} s; wrote\n  ${written.join('\n  ')}`)
    return results.failures.length > 0 ? 1 : 0
  } finally {
    await stopAll()
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exit(code)
  },
  (err: unknown) => {
    process.stderr.write(`footprint: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
