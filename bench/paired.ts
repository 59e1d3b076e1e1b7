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
// Rounds served by one process share its JIT state: a process that settles into slower code stays slower
// for the whole run, every round of it (the same build measured 0.897×, 0.985× and 1.031× in three runs,
// bench/results/paired-rerun-2026-12-07.md). So the run is `--processes` groups: each starts every system
// afresh (a different system first each time), warms them up and loads them for `--rounds` rounds, then
// stops them. A group's ratio is the median of its rounds, the run's the median of the groups', with the
// lowest and highest group beside it: one slow process shows as one outlying group, and is outvoted.
// The default, 3 groups of 3 rounds, is the fewest that outvote one slow process and, within a group, one
// odd round (the first rounds after warm-up ran 0.80–1.23× in the runs above): 72 s of load, 52 s before.
//
//   node bench/paired.ts [--systems outrigger,node-floor-envoy,node-floor,fastify,http-proxy] [--baseline <rev>]
//                        [--processes 3] [--rounds 3] [--seconds 4] [--warmup 12] [--unpinned]
//
// Writes bench/results/paired-<date>.md with the command, every round, each group's median and the medians.

import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { stampFor } from './report/write.ts'
import { stopAll } from './support/children.ts'
import { onSharedCore, sharedCorePlan } from './support/cpu-affinity.ts'
import { groupedRatios, medianOverGroups } from './support/process-groups.ts'
import { rotate } from './support/stats.ts'
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
    processes: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '12' },
    unpinned: { type: 'boolean', default: false },
  },
})
const processes = Number(values.processes)
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)
if (
  !Number.isInteger(processes) ||
  processes < 1 ||
  !Number.isInteger(rounds) ||
  rounds < 1 ||
  !(seconds > 0)
)
  throw new Error('--processes, --rounds and --seconds must be positive')

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
const labels = defs.map((d) => d.label)
process.stderr.write(
  `paired: ${labels.join(', ')}; ${processes} process groups of ${rounds} rounds of ${seconds} s\n`,
)

/** The order group `group` starts the systems in (indices into --systems): one system further each group. */
function startOrder(group: number): number[] {
  return rotate(
    defs.map((_, i) => i),
    group,
  )
}

/** Starts every system afresh, one after the other in `startOrder(group)`; returns them in --systems order. */
async function startGroup(group: number): Promise<RunningSystem[]> {
  const started = new Array<RunningSystem>(defs.length)
  for (const i of startOrder(group)) started[i] = await defs[i].start(ctx)
  return started
}

async function measure(systems: readonly RunningSystem[], group: number): Promise<Round[]> {
  // Warm-up: JIT and heap growth settle before anything is recorded (2 s left the first rounds skewed).
  await loadAll(systems, Number(values.warmup))
  const recorded: Round[] = []
  for (let r = 0; r < rounds; r++) {
    const round = await loadAll(systems, seconds)
    recorded.push(round)
    process.stderr.write(
      `group ${group + 1}/${processes} round ${r + 1}/${rounds}: ${round
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
/** Every group's rounds: `groups[group][round][system]`. */
const groups: Round[][] = []
for (let g = 0; g < processes; g++) {
  const systems = await startGroup(g)
  process.stderr.write(
    `group ${g + 1}/${processes}: started ${startOrder(g)
      .map((i) => `${names[i]} (pid ${systems[i].pids.join(', ')})`)
      .join(', ')}\n`,
  )
  groups.push(
    values.unpinned
      ? await measure(systems, g)
      : await onSharedCore(
          systems.flatMap((s) => s.pids),
          [upstream.pid],
          () => measure(systems, g),
        ),
  )
  for (const system of systems) await system.stop()
}
await stopAll()

const rps = groups.map((groupRounds) => groupRounds.map((round) => round.map((x) => x.rps)))
const cpuUs = groups.map((groupRounds) => groupRounds.map((round) => round.map((x) => x.cpuUsPerRequest)))
const ratios = defs.map((_, i) => groupedRatios(rps, i))
const groupHeader = groups.map((_, g) => `group ${g + 1} (${names[startOrder(g)[0]]} first)`)
const lines = [
  `# Paired load: ${labels.join(', ')}`,
  '',
  `Made by \`node bench/paired.ts ${process.argv.slice(2).join(' ')}\` at commit \`${gitCommit(repoRoot)}\`, ` +
    `node ${process.version}: ${processes} process groups, each starting every system afresh (one system ` +
    `further first each group), warming them up together for ${values.warmup} s, then ${rounds} rounds that ` +
    `load all systems at once (autocannon, 50 connections each, 1 KiB responses, ${seconds} s), so drift ` +
    `of the machine hits all of them alike. Ratios are to ${labels[0]}, per round; a group's is the median ` +
    `of its rounds, the run's the median of the groups', with the lowest and highest group: a process that ` +
    `settled into slower code shows as one outlying group. req/s and CPU are medians over groups of each ` +
    `group's median. ` +
    (sharedCore === undefined
      ? 'Nothing was pinned: the systems, the clients and the upstream shared every core as the scheduler chose.'
      : `The systems were pinned to CPU ${sharedCore.systemsCpu}, the clients (this process) and the upstream to ${sharedCore.clientCpus}.`),
  '',
  `| System | req/s ÷ ${labels[0]}, median over groups | lowest – highest group | median req/s | median CPU µs per request |`,
  '| --- | ---: | ---: | ---: | ---: |',
  ...defs.map(
    (d, i) =>
      `| ${d.label} | ${ratios[i].median.toFixed(3)}× | ${ratios[i].lowest.toFixed(3)} – ${ratios[i].highest.toFixed(3)} | ${Math.round(
        medianOverGroups(rps, i),
      )} | ${medianOverGroups(cpuUs, i).toFixed(1)} |`,
  ),
  '',
  `Per group: the median ratio to ${labels[0]}, then each round's.`,
  '',
  `| System | ${groupHeader.join(' | ')} |`,
  `| --- |${groupHeader.map(() => ' --- |').join('')}`,
  ...defs.map(
    (d, i) =>
      `| ${d.label} | ${ratios[i].groupMedians
        .map((m, g) => `${m.toFixed(3)}× (${ratios[i].perRound[g].map((x) => x.toFixed(3)).join(' / ')})`)
        .join(' | ')} |`,
  ),
  '',
]
// Two runs within the same minute get -2, -3, …: a run never overwrites another's results.
const stamp = `paired-${stampFor(new Date(), false)}`
let file = join(repoRoot, 'bench', 'results', `${stamp}.md`)
for (let n = 2; existsSync(file); n++) file = join(repoRoot, 'bench', 'results', `${stamp}-${n}.md`)
await writeFile(file, lines.join('\n'))
process.stdout.write(`${lines.join('\n')}\nwrote ${file}\n`)
process.exit(0)
