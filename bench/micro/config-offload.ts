// Micro-benchmark: an idle proxy's RSS and its reload latency, to show what reading config costs the serving process.
//
// Run: npm run build && node bench/micro/config-offload.ts [--baseline <rev>] [--processes 3] [--reloads 5]
//
// Each fresh process runs config/istio/ (the resources `npm start` runs) with the production flags, is
// ready (the time to readiness is printed too), sits idle 3 s, and its VmRSS is read (median over the processes). Then each reload rewrites one
// resource file and times until admin /config_dump shows the next model version (the file watcher's
// 100 ms debounce included, the same in every build). With --baseline, Outrigger built from that revision
// runs too, alternating with this checkout's build.

import { readdirSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { stopAll } from '../support/children.ts'
import { memory } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import { buildRevision, shortCommit } from '../systems/outrigger-baseline.ts'
import { repoRoot, startOutrigger } from '../systems/outrigger-process.ts'

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    processes: { type: 'string', default: '3' },
    reloads: { type: 'string', default: '5' },
  },
})
const processes = Number(values.processes)
const reloads = Number(values.reloads)

const istioDir = join(repoRoot, 'config', 'istio')
const resources: Record<string, string> = {}
for (const file of readdirSync(istioDir)) resources[file] = readFileSync(join(istioDir, file), 'utf8')
const touched = Object.keys(resources)[0]

const builds: { label: string; mainScript: string }[] = [
  { label: 'this checkout', mainScript: join(repoRoot, 'dist', 'main.js') },
]
if (values.baseline !== undefined) {
  const dir = join(repoRoot, 'tmp', `baseline-${shortCommit(values.baseline)}`)
  builds.push({
    label: `baseline ${shortCommit(values.baseline)}`,
    mainScript: buildRevision(values.baseline, dir),
  })
}

async function modelVersion(adminPort: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${adminPort}/config_dump`)
  return ((await res.json()) as { model?: { version?: number } }).model?.version ?? -1
}

interface Sample {
  readonly startupMs: number
  readonly idleRssMiB: number
  readonly reloadMs: number[]
}

async function sample(build: { label: string; mainScript: string }, run: number): Promise<Sample> {
  const workDir = join(repoRoot, 'tmp', 'config-offload')
  const proxy = await startOutrigger({ name: `run-${run}`, workDir, resources, mainScript: build.mainScript })
  try {
    await sleep(3_000)
    const idleRssMiB = memory([proxy.child.pid]).rssMiB
    const reloadMs: number[] = []
    for (let i = 0; i < reloads; i++) {
      const before = await modelVersion(proxy.adminPort)
      const started = performance.now()
      await writeFile(join(proxy.dir, 'istio', touched), `${resources[touched]}\n# reload ${run}.${i}\n`)
      while ((await modelVersion(proxy.adminPort)) === before) {
        if (performance.now() - started > 10_000) throw new Error(`no reload:\n${proxy.child.output()}`)
        await sleep(2)
      }
      reloadMs.push(performance.now() - started)
      await sleep(300)
    }
    return { startupMs: proxy.startupMs, idleRssMiB, reloadMs }
  } finally {
    await proxy.stop()
  }
}

const samples = new Map<string, Sample[]>(builds.map((b) => [b.label, []]))
try {
  for (let run = 0; run < processes; run++) {
    for (const build of builds) samples.get(build.label)?.push(await sample(build, run))
  }
} finally {
  await stopAll()
}
for (const [label, runs] of samples) {
  const rss = runs.map((r) => r.idleRssMiB)
  const reload = runs.flatMap((r) => r.reloadMs)
  const startup = median(runs.map((r) => r.startupMs))
  console.log(
    `${label.padEnd(20)} idle RSS median ${median(rss).toFixed(1)} MiB (${rss.map((v) => v.toFixed(1)).join(', ')}); ` +
      `ready after median ${startup.toFixed(0)} ms; ` +
      `reload median ${median(reload).toFixed(0)} ms (min ${Math.min(...reload).toFixed(0)}, max ${Math.max(...reload).toFixed(0)}, n=${reload.length})`,
  )
}
