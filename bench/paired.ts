// `node bench/paired.ts`: loads several proxies at the same moment and compares them round by round.
//
// The interleaved rounds of `npm run bench` load one system at a time, so a change in the machine between
// two runs (other tenants, frequency) lands on one system only; on a shared 2-core machine that swings
// a system's req/s by 20 % and more between rounds. Here every round loads all systems at once, each
// with its own autocannon client (50 connections, 1 KiB responses), so whatever the machine does, it
// does to all of them: the per-round ratios stay within a few percent, which is what an A/B of a small
// hot-path change needs. The systems are pinned to one shared core (the clients and the upstream to the
// others; `--unpinned` leaves all on every core), so the ratios are of work per request on the same core,
// not of each system's solo throughput; CPU µs per request is reported beside them.
//
//   node bench/paired.ts [--systems outrigger,node-floor-envoy,node-floor,fastify,http-proxy] [--baseline <rev>]
//                        [--rounds 10] [--seconds 4] [--warmup 12] [--unpinned]
//
// Writes bench/results/paired-<date>.md with the command, every round and the medians.

import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { stampFor } from './report/write.ts'
import { stopAll } from './support/children.ts'
import { onSharedCore, sharedCorePlan } from './support/cpu-affinity.ts'
import { median } from './support/stats.ts'
import { gitCommit } from './support/tools.ts'
import { nodeFloor, nodeFloorEnvoy } from './systems/node-floor.ts'
import { nodePeerSystem } from './systems/node-peer.ts'
import { outrigger } from './systems/outrigger.ts'
import { outriggerBaseline } from './systems/outrigger-baseline.ts'
import { repoRoot } from './systems/outrigger-process.ts'
import type { RunningSystem, SystemDef } from './systems/system.ts'
import { startScratchUpstream } from './systems/upstream.ts'
import { loadTogether, type TogetherSample } from './workloads/side-by-side.ts'

const { values } = parseArgs({
  options: {
    systems: { type: 'string', default: 'outrigger,node-floor-envoy,node-floor' },
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '10' },
    seconds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '12' },
    unpinned: { type: 'boolean', default: false },
  },
})
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)
if (!Number.isInteger(rounds) || rounds < 1 || !(seconds > 0))
  throw new Error('--rounds and --seconds must be positive')

function definition(name: string): SystemDef {
  if (name === 'outrigger') return outrigger
  if (name === 'node-floor') return nodeFloor
  if (name === 'node-floor-envoy') return nodeFloorEnvoy
  if (name === 'fastify' || name === 'http-proxy') return nodePeerSystem(name)
  if (name === 'outrigger-baseline') {
    if (values.baseline === undefined) throw new Error('outrigger-baseline needs --baseline <rev>')
    return outriggerBaseline(values.baseline)
  }
  throw new Error(
    `unknown system ${name} (outrigger, outrigger-baseline, node-floor, node-floor-envoy, fastify, http-proxy)`,
  )
}

const names = values.systems.split(',').filter(Boolean)
if (values.baseline !== undefined && !names.includes('outrigger-baseline')) names.push('outrigger-baseline')
const defs = names.map(definition)

/** One round: a sample per system, in the order of --systems. */
type Round = TogetherSample[]

function loadAll(systems: readonly RunningSystem[], runSeconds: number): Promise<Round> {
  return loadTogether(systems, { path: '/1k', connections: 50, seconds: runSeconds })
}

const { workDir, upstream } = await startScratchUpstream('paired')
const ctx = { upstreamPort: upstream.port, upstreamPid: upstream.pid, workDir }
const systems: RunningSystem[] = []
for (const def of defs) systems.push(await def.start(ctx))
const labels = defs.map((d) => d.label)
process.stderr.write(`paired: ${labels.join(', ')}; ${rounds} rounds of ${seconds} s\n`)

async function measure(): Promise<Round[]> {
  // Warm-up: JIT and heap growth settle before anything is recorded (2 s left the first rounds skewed).
  await loadAll(systems, Number(values.warmup))
  const recorded: Round[] = []
  for (let r = 0; r < rounds; r++) {
    const round = await loadAll(systems, seconds)
    recorded.push(round)
    process.stderr.write(
      `round ${r + 1}/${rounds}: ${round
        .map((x, i) => `${names[i]} ${Math.round(x.rps)} req/s ${x.cpuUsPerRequest.toFixed(1)} µs`)
        .join(' | ')}\n`,
    )
  }
  return recorded
}

const sharedCore = values.unpinned ? undefined : sharedCorePlan()
if (sharedCore !== undefined)
  process.stderr.write(
    `systems pinned to CPU ${sharedCore.systemsCpu}, clients and upstream to ${sharedCore.clientCpus}\n`,
  )
const recorded = values.unpinned
  ? await measure()
  : await onSharedCore(
      systems.flatMap((s) => s.pids),
      [upstream.pid],
      measure,
    )
await stopAll()

const lines = [
  `# Paired load: ${labels.join(', ')}`,
  '',
  `Made by \`node bench/paired.ts ${process.argv.slice(2).join(' ')}\` at commit \`${gitCommit(repoRoot)}\`, ` +
    `node ${process.version}: every round loads all systems at once (autocannon, 50 connections each, ` +
    `1 KiB responses, ${seconds} s), so drift of the machine hits all of them alike. Ratios are to ` +
    `${labels[0]}, per round; the medians are over ${rounds} rounds. ` +
    (sharedCore === undefined
      ? 'Nothing was pinned: the systems, the clients and the upstream shared every core as the scheduler chose.'
      : `The systems were pinned to CPU ${sharedCore.systemsCpu}, the clients (this process) and the upstream to ${sharedCore.clientCpus}.`),
  '',
  `| System | median req/s ÷ ${labels[0]} | median req/s | median CPU µs per request | per-round ratio |`,
  '| --- | ---: | ---: | ---: | --- |',
  ...defs.map((d, i) => {
    const ratios = recorded.map((r) => r[i].rps / r[0].rps)
    return `| ${d.label} | ${median(ratios).toFixed(3)}× | ${Math.round(median(recorded.map((r) => r[i].rps)))} | ${median(
      recorded.map((r) => r[i].cpuUsPerRequest),
    ).toFixed(1)} | ${ratios.map((x) => x.toFixed(3)).join(' / ')} |`
  }),
  '',
]
// Two runs within the same minute get -2, -3, …: a run never overwrites another's results.
const stamp = `paired-${stampFor(new Date(), false)}`
let file = join(repoRoot, 'bench', 'results', `${stamp}.md`)
for (let n = 2; existsSync(file); n++) file = join(repoRoot, 'bench', 'results', `${stamp}-${n}.md`)
await writeFile(file, lines.join('\n'))
process.stdout.write(`${lines.join('\n')}\nwrote ${file}\n`)
process.exit(0)
