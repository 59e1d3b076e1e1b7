// `node bench/footprint.ts [--processes 3] [--quick] [--image]`: Outrigger's memory and image size against issue 21's targets and anchors.
//
// Also `npm run bench -- --only footprint` (a full `npm run bench` runs it too). Measures the compiled proxy
// (`npm run build` first) with the production node flags; writes bench/results/footprint-<UTC date-time>.md
// and .json (`-short` for --quick, git-ignored). bench/README.md "Memory" describes each measurement.

import { footprintTable, writeFootprint } from './report/footprint-markdown.ts'
import { stampFor } from './report/write.ts'
import { stopAll } from './support/children.ts'
import { footprintPlan } from './support/footprint-options.ts'
import { startScratchUpstream } from './systems/upstream.ts'
import { runFootprint } from './workloads/footprint-case.ts'
import { log } from './workloads/interleave.ts'

async function main(argv: readonly string[]): Promise<number> {
  const { plan, quick, out } = footprintPlan(argv)
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
