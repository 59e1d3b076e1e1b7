// Micro-benchmark: an injected sidecar's idle RSS, before and after Prometheus's first scrape, for this build, another revision's or flag variants.
//
// Run: npm run build && node bench/micro/idle-rss.ts [--processes 3] [--baseline <rev>] [--variant 'label:--flag ENV=value'…]
//        [--build 'label:path/to/main.js'…] [--modules]
//
// Each fresh process runs the footprint bench's idle phase (bench/workloads/footprint-case.ts): the production
// node flags, an ingress listener in front of nginx, one GET /1k, 5 s, VmRSS ("one request"); then one GET of
// the stats port's /stats/prometheus (a pod's Prometheus scrapes every 15 s), 5 s, VmRSS ("and one scrape").
// The builds alternate; medians per build. With --modules, the first process of each build runs with
// OUTRIGGER_RECORD_MODULES=1 and its admin /modules (files loaded, by package) and /memory are printed after the scrape.

import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { stopAll } from '../support/children.ts'
import { get } from '../support/http.ts'
import { parseNodeVariant } from '../support/node-variant.ts'
import { freePorts } from '../support/ports.ts'
import { memory } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import { gitCommit } from '../support/tools.ts'
import { buildRevision, shortCommit } from '../systems/outrigger-baseline.ts'
import { ingressSidecar, repoRoot, startOutrigger } from '../systems/outrigger-process.ts'
import { startScratchUpstream } from '../systems/upstream.ts'

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    variant: { type: 'string', multiple: true, default: [] },
    build: { type: 'string', multiple: true, default: [] },
    processes: { type: 'string', default: '3' },
    modules: { type: 'boolean', default: false },
  },
})
const processes = Number(values.processes)
const IDLE_SECONDS = 5

interface Build {
  readonly name: string
  readonly mainScript?: string
  readonly nodeFlags: readonly string[]
  readonly env: Record<string, string>
  readonly requestMiB: number[]
  readonly scrapeMiB: number[]
}

const { workDir, upstream } = await startScratchUpstream('idle-rss')
const builds: Build[] = [
  { name: `this checkout (${gitCommit(repoRoot)})`, nodeFlags: [], env: {}, requestMiB: [], scrapeMiB: [] },
]
if (values.baseline !== undefined) {
  const commit = shortCommit(values.baseline)
  builds.push({
    name: `baseline ${commit}`,
    mainScript: buildRevision(values.baseline, join(workDir, `baseline-${commit}`)),
    nodeFlags: [],
    env: {},
    requestMiB: [],
    scrapeMiB: [],
  })
}
for (const build of values.build) {
  const colon = build.indexOf(':')
  builds.push({
    name: build.slice(0, colon),
    mainScript: build.slice(colon + 1),
    nodeFlags: [],
    env: {},
    requestMiB: [],
    scrapeMiB: [],
  })
}
for (const variant of values.variant)
  builds.push({ ...parseNodeVariant(variant), requestMiB: [], scrapeMiB: [] })

let started = 0
async function measure(build: Build, listModules: boolean): Promise<void> {
  const [port] = await freePorts(1)
  const proxy = await startOutrigger({
    name: `p${started++}`,
    workDir,
    mainScript: build.mainScript,
    nodeFlags: build.nodeFlags,
    env: { ...process.env, ...build.env, ...(listModules ? { OUTRIGGER_RECORD_MODULES: '1' } : {}) },
    resources: { 'sidecar.yaml': ingressSidecar(port, upstream.port) },
  })
  try {
    if ((await get(port, '/1k')).status !== 200) throw new Error('the first request failed')
    await sleep(IDLE_SECONDS * 1000)
    const requestMiB = memory([proxy.child.pid]).rssMiB
    const scrape = await get(proxy.statsPort, '/stats/prometheus', undefined, 10_000)
    if (scrape.status !== 200) throw new Error(`/stats/prometheus answered ${scrape.status}`)
    await sleep(IDLE_SECONDS * 1000)
    const scrapeMiB = memory([proxy.child.pid]).rssMiB
    if (listModules) {
      const loaded = (await (await fetch(`http://127.0.0.1:${proxy.adminPort}/modules`)).json()) as {
        builtins: string[]
        packages: Record<string, number>
        modules: string[]
      }
      const own = loaded.modules.filter((m) => !m.includes('/node_modules/') && m.startsWith('file:')).length
      const memory = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/memory`)).text()
      process.stdout.write(
        `${build.name}: ${own} own files; packages ${JSON.stringify(loaded.packages)}\n  builtins ${loaded.builtins.join(' ')}\n  /memory ${memory}\n`,
      )
    } else {
      build.requestMiB.push(requestMiB)
      build.scrapeMiB.push(scrapeMiB)
    }
  } finally {
    await proxy.stop()
  }
}

try {
  if (values.modules) for (const build of builds) await measure(build, true)
  for (let i = 0; i < processes; i++) for (const build of builds) await measure(build, false)
  const f = (v: number): string => v.toFixed(1)
  process.stdout.write(
    `\nmedian of ${processes} fresh processes per build, VmRSS MiB ${IDLE_SECONDS} s after:\n` +
      `${'build'.padEnd(40)} ${'one request'.padStart(12)} ${'and one scrape'.padStart(15)}   each\n`,
  )
  for (const b of builds)
    process.stdout.write(
      `${b.name.padEnd(40)} ${f(median(b.requestMiB)).padStart(12)} ${f(median(b.scrapeMiB)).padStart(15)}   ${b.requestMiB.map(f).join(' / ')} ; ${b.scrapeMiB.map(f).join(' / ')}\n`,
    )
} finally {
  await stopAll()
}
