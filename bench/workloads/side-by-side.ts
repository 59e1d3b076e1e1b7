// Loads Outrigger and one other system at the same moment, round after round, so the machine's drift hits both alike.
//
// The interleaved rounds of the throughput case load one system at a time; on a shared 2-core machine a
// system's req/s swings by 20 % and more between two rounds a minute apart, and that lands on one system
// only. Loaded together, each with its own autocannon client, the two see the same machine at the same
// moment. Both are pinned to the same core (bench/support/cpu-affinity.ts), the clients and the upstream to
// the other: the scheduler splits that core evenly between the two busy proxies, so the system that spends
// less CPU per request serves more, and the req/s ratio is the ratio of work per request on one core. It is
// not either system's solo throughput; CPU µs per request is reported beside it.

import type { Failure, SideBySideCase, SideBySidePair, SideBySideRound } from '../report/results.ts'
import { onSharedCore, sharedCorePlan } from '../support/cpu-affinity.ts'
import type { Plan } from '../support/options.ts'
import { cpuSeconds } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import type { RunningSystem } from '../systems/system.ts'
import { log } from './interleave.ts'
import { runThroughput } from './throughput.ts'

export interface TogetherSample {
  readonly rps: number
  /** CPU (user + system) of the system's processes per completed request, µs. */
  readonly cpuUsPerRequest: number
  readonly errors: number
}

export interface TogetherOptions {
  readonly path: string
  readonly connections: number
  readonly seconds: number
}

/** One round: every system loaded at once by its own autocannon client; one sample per system, in order. */
export async function loadTogether(
  systems: readonly RunningSystem[],
  opts: TogetherOptions,
): Promise<TogetherSample[]> {
  const cpuBefore = systems.map((s) => cpuSeconds(s.pids))
  const samples = await Promise.all(systems.map((s) => runThroughput(s.target, opts)))
  const cpuAfter = systems.map((s) => cpuSeconds(s.pids))
  return samples.map((x, i) => ({
    rps: x.rps,
    cpuUsPerRequest: ((cpuAfter[i] - cpuBefore[i]) * 1e6) / (x.rps * opts.seconds),
    errors: x.errors + x.non2xx,
  }))
}

/** Systems that are not a proxy of their own (direct), or that are Outrigger twice over (the pair), sit out. */
function comparable(system: RunningSystem): boolean {
  return system.name !== 'direct' && system.name !== 'outrigger' && system.name !== 'outrigger-pair'
}

export async function runSideBySideCase(
  running: readonly RunningSystem[],
  plan: Plan,
  upstreamPid: number,
): Promise<{ result?: SideBySideCase; failures: Failure[] }> {
  const outrigger = running.find((s) => s.name === 'outrigger')
  if (outrigger === undefined)
    return { failures: [{ where: 'side-by-side', error: 'Outrigger did not start' }] }
  const opts = { path: '/1k', connections: plan.connections, seconds: plan.sideBySideSeconds }
  const pairs: Record<string, SideBySidePair> = {}
  const failures: Failure[] = []
  for (const other of running.filter(comparable)) {
    try {
      pairs[other.name] = await onSharedCore([...outrigger.pids, ...other.pids], [upstreamPid], async () =>
        summarize(await loadPair(outrigger, other, opts, plan, upstreamPid)),
      )
    } catch (err) {
      failures.push({ where: `side-by-side ${other.name}`, error: (err as Error).message })
      log(`side-by-side ${other.name} FAILED: ${(err as Error).message}`)
    }
  }
  return {
    result: {
      title: 'HTTP/1.1 keep-alive, 1 KiB responses, Outrigger and one other system loaded at the same moment',
      path: opts.path,
      connections: opts.connections,
      seconds: opts.seconds,
      rounds: plan.sideBySideRounds,
      sharedCore: sharedCorePlan(),
      pairs,
    },
    failures,
  }
}

/** The pair's recorded rounds, after one unrecorded round in which both JITs and heaps settle at the shared load. */
async function loadPair(
  outrigger: RunningSystem,
  other: RunningSystem,
  opts: TogetherOptions,
  plan: Plan,
  upstreamPid: number,
): Promise<SideBySideRound[]> {
  await loadTogether([outrigger, other], { ...opts, seconds: plan.warmupSeconds })
  const rounds: SideBySideRound[] = []
  for (let r = 0; r < plan.sideBySideRounds; r++) {
    // Which client starts first alternates, so neither system always gets the first connections in.
    const flip = r % 2 === 1
    const clientBefore = clientCpuSeconds(upstreamPid)
    const [a, b] = await loadTogether(flip ? [other, outrigger] : [outrigger, other], opts)
    const clientCores = (clientCpuSeconds(upstreamPid) - clientBefore) / opts.seconds
    const [o, x] = flip ? [b, a] : [a, b]
    rounds.push({
      outriggerRps: o.rps,
      otherRps: x.rps,
      outriggerCpuUsPerRequest: o.cpuUsPerRequest,
      otherCpuUsPerRequest: x.cpuUsPerRequest,
      clientCores,
      errors: o.errors + x.errors,
    })
    log(
      `side-by-side round ${r + 1}/${plan.sideBySideRounds} outrigger ${Math.round(o.rps)} req/s ` +
        `${o.cpuUsPerRequest.toFixed(1)} µs | ${other.name} ${Math.round(x.rps)} req/s ${x.cpuUsPerRequest.toFixed(1)} µs` +
        ` | load generator + upstream ${clientCores.toFixed(2)} cores`,
    )
  }
  return rounds
}

/** CPU seconds of the load generator (this process, both clients) and the upstream's processes. */
function clientCpuSeconds(upstreamPid: number): number {
  const own = process.cpuUsage()
  return (own.user + own.system) / 1e6 + cpuSeconds([upstreamPid])
}

/** The medians of a pair's rounds; the req/s ratio is taken per round first, so drift between rounds cancels. */
function summarize(rounds: readonly SideBySideRound[]): SideBySidePair {
  return {
    rpsRatio: median(rounds.map((r) => r.outriggerRps / r.otherRps)),
    outriggerCpuUsPerRequest: median(rounds.map((r) => r.outriggerCpuUsPerRequest)),
    otherCpuUsPerRequest: median(rounds.map((r) => r.otherCpuUsPerRequest)),
    cpuRatio: median(rounds.map((r) => r.outriggerCpuUsPerRequest / r.otherCpuUsPerRequest)),
    rounds: [...rounds],
  }
}
