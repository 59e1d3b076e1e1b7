// Micro-benchmark: Outrigger's RSS and CPU at 1000 req/s with glibc's default malloc arenas and with MALLOC_ARENA_MAX=2.
//
// Run: npm run build && node bench/micro/malloc-arenas.ts [--processes 3] [--seconds 10]
//
// glibc gives each thread that contends for the allocator an arena of its own (up to 8 per core), and
// memory freed into an arena stays in the process. A Node sidecar has V8's compiler and GC threads and
// libuv's pool besides the main thread. Each setting runs in fresh processes, alternating, and each
// process is measured twice: at Istio's published load alone (1 KiB, 1000 req/s), then again after a
// burst at saturation (50 connections, 1 KiB and 64 KiB responses) as a busy sidecar would have seen.

import { parseArgs } from 'node:util'
import { stopAll } from '../support/children.ts'
import { freePorts } from '../support/ports.ts'
import { cpuSeconds, memory } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import { gitCommit } from '../support/tools.ts'
import { ingressSidecar, repoRoot, startOutrigger } from '../systems/outrigger-process.ts'
import { startScratchUpstream } from '../systems/upstream.ts'
import { runPaced } from '../workloads/paced-client.ts'
import { runThroughput } from '../workloads/throughput.ts'

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
  },
})
const processes = Number(values.processes)
const seconds = Number(values.seconds)

interface Sample {
  readonly idleMiB: number
  readonly rateMiB: number
  readonly rateCpuMsPer1k: number
  readonly burstMiB: number
  readonly burstRateCpuMsPer1k: number
}

const settings: [string, NodeJS.ProcessEnv][] = [
  ['glibc default arenas', { ...process.env, MALLOC_ARENA_MAX: undefined }],
  ['MALLOC_ARENA_MAX=2', { ...process.env, MALLOC_ARENA_MAX: '2' }],
]

const { workDir, upstream } = await startScratchUpstream('arenas')

let started = 0

async function measure(env: NodeJS.ProcessEnv): Promise<Sample> {
  const [port] = await freePorts(1)
  const proxy = await startOutrigger({
    name: `p${started++}`,
    workDir,
    resources: { 'sidecar.yaml': ingressSidecar(port, upstream.port) },
    env,
  })
  const pids = [proxy.child.pid]
  try {
    const target = { port }
    const rate = { path: '/1k', rate: 1000, seconds, connections: 16 }
    const idleMiB = memory(pids).rssMiB
    // A short paced warm-up so the JIT has compiled the path; then the measured run.
    await runPaced(target, { ...rate, seconds: 2 })
    let cpu = cpuSeconds(pids)
    let done = await runPaced(target, rate)
    const rateCpuMsPer1k = ((cpuSeconds(pids) - cpu) * 1e6) / done.completed
    const rateMiB = memory(pids).rssMiB
    for (const path of ['/1k', '/64k']) await runThroughput(target, { path, connections: 50, seconds: 3 })
    cpu = cpuSeconds(pids)
    done = await runPaced(target, rate)
    const burstRateCpuMsPer1k = ((cpuSeconds(pids) - cpu) * 1e6) / done.completed
    return { idleMiB, rateMiB, rateCpuMsPer1k, burstMiB: memory(pids).rssMiB, burstRateCpuMsPer1k }
  } finally {
    await proxy.stop()
  }
}

const samples = new Map<string, Sample[]>(settings.map(([name]) => [name, []]))
for (let i = 0; i < processes; i++) {
  for (const [name, env] of i % 2 === 0 ? settings : [...settings].reverse()) {
    const s = await measure(env)
    samples.get(name)!.push(s)
    process.stderr.write(`${name} #${i + 1}: ${JSON.stringify(s)}\n`)
  }
}
await stopAll()

const f = (x: number): string => x.toFixed(0)
const lines = [
  `Command: \`node bench/micro/malloc-arenas.ts --processes ${processes} --seconds ${seconds}\` at \`${gitCommit(repoRoot)}\`, node ${process.version}.`,
  '',
  '| Setting | RSS idle MiB | RSS after 1000 req/s MiB | CPU ms / 1000 req | RSS after a saturation burst, then 1000 req/s MiB | CPU ms / 1000 req after the burst |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...settings.map(([name]) => {
    const xs = samples.get(name)!
    const col = (k: keyof Sample): string =>
      `${f(median(xs.map((x) => x[k])))} (${xs.map((x) => f(x[k])).join(' / ')})`
    return `| ${name} | ${col('idleMiB')} | ${col('rateMiB')} | ${col('rateCpuMsPer1k')} | ${col('burstMiB')} | ${col('burstRateCpuMsPer1k')} |`
  }),
]
process.stdout.write(`${lines.join('\n')}\n`)
process.exit(0)
