// Micro-benchmark: what an Outrigger process holds once a burst of traffic is over and it sits idle.
//
// Run: npm run build && node bench/micro/idle-memory.ts [--baseline <rev>] [--processes 3] [--idle 15]
//
// Each process starts fresh, is loaded at saturation (50 connections, 3 s of 1 KiB then 3 s of 64 KiB
// responses), then left idle; RSS (from /proc) and the heap and ArrayBuffers (from the admin /memory)
// are read before the burst, right after it, and after the idle wait. With --baseline, Outrigger built
// from that revision runs too, alternating with this checkout's build.

import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { stopAll } from '../support/children.ts'
import { freePorts } from '../support/ports.ts'
import { memory } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import { gitCommit } from '../support/tools.ts'
import { buildRevision, shortCommit } from '../systems/outrigger-baseline.ts'
import { ingressSidecar, repoRoot, startOutrigger } from '../systems/outrigger-process.ts'
import { startScratchUpstream } from '../systems/upstream.ts'
import { runThroughput } from '../workloads/throughput.ts'

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    processes: { type: 'string', default: '3' },
    idle: { type: 'string', default: '15' },
  },
})
const processes = Number(values.processes)
const idleSeconds = Number(values.idle)

interface Reading {
  readonly rssMiB: number
  readonly heapUsedMiB: number
  readonly arrayBuffersMiB: number
}
type Sample = Record<'before' | 'afterBurst' | 'afterIdle', Reading>

const { workDir, upstream } = await startScratchUpstream('idle-memory')
const builds: [string, string | undefined][] = [[`this checkout (${gitCommit(repoRoot)})`, undefined]]
if (values.baseline !== undefined) {
  const commit = shortCommit(values.baseline)
  builds.push([`baseline ${commit}`, buildRevision(values.baseline, join(workDir, `baseline-${commit}`))])
}

let started = 0
async function measure(mainScript: string | undefined): Promise<Sample> {
  const [port] = await freePorts(1)
  const proxy = await startOutrigger({
    name: `p${started++}`,
    workDir,
    mainScript,
    resources: { 'sidecar.yaml': ingressSidecar(port, upstream.port) },
  })
  const read = async (): Promise<Reading> => {
    const m = (await (await fetch(`http://127.0.0.1:${proxy.adminPort}/memory`)).json()) as Record<
      string,
      string
    >
    return {
      rssMiB: memory([proxy.child.pid]).rssMiB,
      heapUsedMiB: Number(m.allocated) / 2 ** 20,
      arrayBuffersMiB: Number(m.array_buffers) / 2 ** 20,
    }
  }
  try {
    const before = await read()
    for (const path of ['/1k', '/64k']) await runThroughput({ port }, { path, connections: 50, seconds: 3 })
    const afterBurst = await read()
    await sleep(idleSeconds * 1000)
    return { before, afterBurst, afterIdle: await read() }
  } finally {
    await proxy.stop()
  }
}

const samples = new Map<string, Sample[]>(builds.map(([name]) => [name, []]))
for (let i = 0; i < processes; i++) {
  for (const [name, script] of i % 2 === 0 ? builds : [...builds].reverse()) {
    const s = await measure(script)
    samples.get(name)?.push(s)
    process.stderr.write(`${name} #${i + 1}: ${JSON.stringify(s)}\n`)
  }
}
await stopAll()

const cell = (xs: readonly Sample[], when: keyof Sample): string => {
  const f = (k: keyof Reading): string => median(xs.map((x) => x[when][k])).toFixed(0)
  return `${f('rssMiB')} / ${f('heapUsedMiB')} / ${f('arrayBuffersMiB')}`
}
const lines = [
  `Command: \`node bench/micro/idle-memory.ts ${process.argv.slice(2).join(' ')}\`, node ${process.version}; medians of ${processes} fresh processes each.`,
  '',
  `| Build | before the burst: RSS / heap used / ArrayBuffers MiB | right after the burst | after ${idleSeconds} s idle | RSS after idle, per process |`,
  '| --- | ---: | ---: | ---: | ---: |',
  ...builds.map(([name]) => {
    const xs = samples.get(name) ?? []
    return `| ${name} | ${cell(xs, 'before')} | ${cell(xs, 'afterBurst')} | ${cell(xs, 'afterIdle')} | ${xs.map((x) => x.afterIdle.rssMiB.toFixed(0)).join(' / ')} |`
  }),
]
process.stdout.write(`${lines.join('\n')}\n`)
process.exit(0)
