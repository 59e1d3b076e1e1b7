// Micro-benchmark: what an Outrigger process holds once a burst of traffic is over and it sits idle.
//
// Run: npm run build && node bench/micro/idle-memory.ts [--baseline <rev>] [--variant 'label:--flag ENV=value'…]
//        [--processes 3] [--idle 15,60] [--rate-seconds 10]
//
// Each process starts fresh, is loaded at saturation (50 connections, 3 s of 1 KiB then 3 s of 64 KiB
// responses), then left idle; RSS (from /proc) and the heap and ArrayBuffers (from the admin /memory)
// are read before the burst, right after it, and at each idle checkpoint (seconds after the burst). With
// --rate-seconds, the burst is preceded by that long at 1000 req/s (1 KiB, after a 2 s warm-up), whose RSS
// and CPU per request are reported too. With
// --baseline, Outrigger built from that revision runs too; each --variant runs this checkout's build with
// more node flags (`--…` words) or environment variables (`NAME=value` words). The builds alternate.

import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { stopAll } from '../support/children.ts'
import { parseNodeVariant } from '../support/node-variant.ts'
import { freePorts } from '../support/ports.ts'
import { cpuSeconds, memory } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import { gitCommit } from '../support/tools.ts'
import { buildRevision, shortCommit } from '../systems/outrigger-baseline.ts'
import { ingressSidecar, repoRoot, startOutrigger } from '../systems/outrigger-process.ts'
import { startScratchUpstream } from '../systems/upstream.ts'
import { runPaced } from '../workloads/paced-client.ts'
import { runThroughput } from '../workloads/throughput.ts'

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    variant: { type: 'string', multiple: true, default: [] },
    processes: { type: 'string', default: '3' },
    idle: { type: 'string', default: '15' },
    'rate-seconds': { type: 'string', default: '0' },
  },
})
const processes = Number(values.processes)
const checkpoints = values.idle.split(',').map(Number)
const rateSeconds = Number(values['rate-seconds'])

interface Reading {
  readonly rssMiB: number
  readonly heapUsedMiB: number
  readonly arrayBuffersMiB: number
}
interface Sample {
  readonly before: Reading
  readonly afterBurst: Reading
  /** One reading per idle checkpoint. */
  readonly idle: readonly Reading[]
  /** CPU seconds the process used during the burst, and from the burst's end to the last checkpoint. */
  readonly burstCpuS: number
  readonly idleCpuS: number
  /** Requests answered 2xx during the burst. */
  readonly burstRequests: number
  readonly startupMs: number
  /** At 1000 req/s (with --rate-seconds): RSS at the end, and CPU ms per 1000 requests. */
  readonly rate?: { readonly rssMiB: number; readonly cpuMsPer1k: number }
}
interface Build {
  readonly name: string
  readonly mainScript?: string
  readonly nodeFlags: readonly string[]
  readonly env: Record<string, string>
}

const { workDir, upstream } = await startScratchUpstream('idle-memory')
const builds: Build[] = [{ name: `this checkout (${gitCommit(repoRoot)})`, nodeFlags: [], env: {} }]
if (values.baseline !== undefined) {
  const commit = shortCommit(values.baseline)
  builds.push({
    name: `baseline ${commit}`,
    mainScript: buildRevision(values.baseline, join(workDir, `baseline-${commit}`)),
    nodeFlags: [],
    env: {},
  })
}
for (const variant of values.variant) builds.push(parseNodeVariant(variant))

let started = 0
async function measure(build: Build): Promise<Sample> {
  const [port] = await freePorts(1)
  const proxy = await startOutrigger({
    name: `p${started++}`,
    workDir,
    mainScript: build.mainScript,
    nodeFlags: build.nodeFlags,
    env: { ...process.env, ...build.env },
    resources: { 'sidecar.yaml': ingressSidecar(port, upstream.port) },
  })
  const pid = proxy.child.pid
  const read = async (): Promise<Reading> => {
    const m = (await (await fetch(`http://127.0.0.1:${proxy.adminPort}/memory`)).json()) as Record<
      string,
      string
    >
    return {
      rssMiB: memory([pid]).rssMiB,
      heapUsedMiB: Number(m.allocated) / 2 ** 20,
      arrayBuffersMiB: Number(m.array_buffers) / 2 ** 20,
    }
  }
  try {
    const before = await read()
    let rate: Sample['rate']
    if (rateSeconds > 0) {
      const paced = { path: '/1k', rate: 1000, seconds: rateSeconds, connections: 16 }
      await runPaced({ port }, { ...paced, seconds: 2 })
      const cpu = cpuSeconds([pid])
      const done = await runPaced({ port }, paced)
      rate = { rssMiB: memory([pid]).rssMiB, cpuMsPer1k: ((cpuSeconds([pid]) - cpu) * 1e6) / done.completed }
    }
    const cpuBefore = cpuSeconds([pid])
    let burstRequests = 0
    for (const path of ['/1k', '/64k'])
      burstRequests += (await runThroughput({ port }, { path, connections: 50, seconds: 3 })).rps * 3
    const afterBurst = await read()
    const cpuAfterBurst = cpuSeconds([pid])
    const burstEnded = performance.now()
    const idle: Reading[] = []
    for (const seconds of checkpoints) {
      await sleep(Math.max(0, burstEnded + seconds * 1000 - performance.now()))
      idle.push(await read())
    }
    return {
      before,
      afterBurst,
      idle,
      burstCpuS: cpuAfterBurst - cpuBefore,
      idleCpuS: cpuSeconds([pid]) - cpuAfterBurst,
      burstRequests,
      startupMs: proxy.startupMs,
      rate,
    }
  } finally {
    await proxy.stop()
  }
}

const samples = new Map<string, Sample[]>(builds.map((b) => [b.name, []]))
for (let i = 0; i < processes; i++) {
  for (const build of i % 2 === 0 ? builds : [...builds].reverse()) {
    const s = await measure(build)
    samples.get(build.name)?.push(s)
    process.stderr.write(`${build.name} #${i + 1}: ${JSON.stringify(s)}\n`)
  }
}
await stopAll()

const f = (xs: readonly number[], digits = 0): string => median(xs).toFixed(digits)
const cell = (readings: readonly Reading[]): string =>
  `${f(readings.map((r) => r.rssMiB))} / ${f(readings.map((r) => r.heapUsedMiB))} / ${f(readings.map((r) => r.arrayBuffersMiB))}`
const lines = [
  `Command: \`node bench/micro/idle-memory.ts ${process.argv
    .slice(2)
    .map((a) => (/\s/.test(a) ? `'${a}'` : a))
    .join(' ')}\`, node ${process.version}; medians of ${processes} fresh processes each.`,
  '',
  `| Build | start-up ms | 1000 req/s: RSS MiB, CPU ms per 1000 | idle after start: RSS / heap used / ArrayBuffers MiB | right after the burst | ${checkpoints.map((s) => `${s} s after it`).join(' | ')} | RSS at ${checkpoints.at(-1)} s, per process | burst: requests, CPU ms per 1000 | CPU s idle |`,
  `| --- | ---: | ---: | ---: | ---: | ${checkpoints.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`,
  ...builds.map(({ name }) => {
    const xs = samples.get(name) ?? []
    const last = checkpoints.length - 1
    const rates = xs.flatMap((x) => (x.rate === undefined ? [] : [x.rate]))
    const rateCell =
      rates.length === 0 ? '–' : `${f(rates.map((r) => r.rssMiB))}, ${f(rates.map((r) => r.cpuMsPer1k))}`
    return `| ${name} | ${f(xs.map((x) => x.startupMs))} | ${rateCell} | ${cell(xs.map((x) => x.before))} | ${cell(xs.map((x) => x.afterBurst))} | ${checkpoints.map((_, i) => cell(xs.map((x) => x.idle[i] as Reading))).join(' | ')} | ${xs.map((x) => (x.idle[last] as Reading).rssMiB.toFixed(0)).join(' / ')} | ${f(xs.map((x) => x.burstRequests))}, ${f(xs.map((x) => (x.burstCpuS * 1e6) / x.burstRequests))} | ${f(
      xs.map((x) => x.idleCpuS),
      2,
    )} |`
  }),
]
process.stdout.write(`${lines.join('\n')}\n`)
process.exit(0)
