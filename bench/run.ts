// `npm run bench [-- --short] [--only <case,…>] [--systems <system,…>]`: Outrigger against the direct path, nginx, haproxy and a Node proxy.

import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { writeFootprint } from './report/footprint-markdown.ts'
import type {
  BenchResults,
  ConcurrencyCase,
  Failure,
  MtlsPairCase,
  NodePeerChoice,
  RateCase,
  ScaleCase,
  SideBySideCase,
  SystemInfo,
  ThroughputCase,
} from './report/results.ts'
import { renderSaved, resultsDir, stampFor, writeResults } from './report/write.ts'
import { installCleanup, removeAtExit, stopAll } from './support/children.ts'
import { footprintPlan } from './support/footprint-options.ts'
import { get } from './support/http.ts'
import { type Plan, parsePlan, type SystemName } from './support/options.ts'
import { ensureBinary, ensureTools, gitCommit, toolVersion } from './support/tools.ts'
import { direct } from './systems/direct.ts'
import { haproxySystem } from './systems/haproxy.ts'
import { nginxSystem } from './systems/nginx.ts'
import { nodeFloor, nodeFloorEnvoy } from './systems/node-floor.ts'
import { nodePeerSystem } from './systems/node-peer.ts'
import { outrigger } from './systems/outrigger.ts'
import { outriggerBaseline } from './systems/outrigger-baseline.ts'
import { outriggerPair } from './systems/outrigger-pair.ts'
import { repoRoot } from './systems/outrigger-process.ts'
import type { RunningSystem, SystemContext, SystemDef } from './systems/system.ts'
import { BODIES, startUpstream } from './systems/upstream.ts'
import { runConcurrencyCase } from './workloads/concurrency-case.ts'
import { runFootprint } from './workloads/footprint-case.ts'
import { log } from './workloads/interleave.ts'
import { runMtlsPairCase } from './workloads/mtls-pair.ts'
import { pickNodePeer } from './workloads/node-peer-pick.ts'
import { runProtocolCases } from './workloads/protocol-cases.ts'
import { runRateCase } from './workloads/rate-case.ts'
import { runRetriesCase } from './workloads/retries-case.ts'
import { runScaleCase } from './workloads/scale.ts'
import { runSideBySideCase } from './workloads/side-by-side.ts'
import { runThroughput } from './workloads/throughput.ts'
import { runThroughputCase } from './workloads/throughput-case.ts'

interface Collected {
  readonly systems: SystemInfo[]
  readonly throughput: ThroughputCase[]
  sideBySide?: SideBySideCase
  rate?: RateCase
  retries?: RateCase
  scale?: ScaleCase
  concurrency?: ConcurrencyCase
  mtls?: MtlsPairCase
  nodePeer?: NodePeerChoice
  readonly failures: Failure[]
  /** The footprint case writes a report of its own (bench/footprint.ts's): its files. */
  readonly footprintFiles: string[]
}

/** Starts a system and checks that both bodies come through it whole. */
async function startVerified(def: SystemDef, ctx: SystemContext): Promise<RunningSystem> {
  const system = await def.start(ctx)
  try {
    for (const [path, size] of Object.entries(BODIES)) {
      const res = await get(system.target.port, path, system.target.host)
      if (res.status !== 200 || res.bytes !== size) {
        throw new Error(
          `GET ${path} answered ${res.status} with ${res.bytes} bytes, expected 200 with ${size}`,
        )
      }
    }
    return system
  } catch (err) {
    await system.stop()
    throw err
  }
}

async function definitions(plan: Plan, ctx: SystemContext, tools: Record<string, string>, out: Collected) {
  const defs: SystemDef[] = []
  for (const name of plan.systems as readonly SystemName[]) {
    if (name === 'direct') defs.push(direct)
    else if (name === 'outrigger') defs.push(outrigger)
    else if (name === 'outrigger-pair') defs.push(outriggerPair)
    else if (name === 'nginx') defs.push(nginxSystem(tools.nginx))
    else if (name === 'haproxy') defs.push(haproxySystem(tools.haproxy))
    else if (name === 'node-floor') defs.push(nodeFloor)
    else if (name === 'node-floor-envoy') defs.push(nodeFloorEnvoy)
    else if (name === 'outrigger-baseline' && plan.baseline !== undefined)
      defs.push(outriggerBaseline(plan.baseline))
    else if (name === 'node-peer') {
      try {
        const { choice, flavour } = await pickNodePeer(ctx, plan)
        out.nodePeer = choice
        defs.push(nodePeerSystem(flavour))
      } catch (err) {
        out.failures.push({ where: 'node peer choice', error: (err as Error).message })
      }
    }
  }
  return defs
}

/** The throughput and fixed-rate cases: every system started once, then loaded in interleaved rounds. */
async function measureSystems(plan: Plan, ctx: SystemContext, tools: Record<string, string>, out: Collected) {
  const running: RunningSystem[] = []
  try {
    for (const def of await definitions(plan, ctx, tools, out)) {
      try {
        const system = await startVerified(def, ctx)
        running.push(system)
        out.systems.push({ name: system.name, label: def.label, detail: system.detail })
        log(`started ${def.label}: ${system.detail}`)
      } catch (err) {
        out.failures.push({ where: `start ${def.name}`, error: (err as Error).message })
        log(`start ${def.name} FAILED: ${(err as Error).message}`)
      }
    }
    // JIT warm-up for the Node systems (and page cache, connection pools for all), not recorded.
    for (const system of running) {
      for (const path of Object.keys(BODIES)) {
        await runThroughput(system.target, {
          path,
          connections: plan.connections,
          seconds: plan.warmupSeconds,
        })
      }
    }
    const sizes = [
      { name: 'throughput-1k', title: 'HTTP/1.1 keep-alive, 1 KiB responses', path: '/1k' },
      { name: 'throughput-64k', title: 'HTTP/1.1 keep-alive, 64 KiB responses', path: '/64k' },
    ] as const
    for (const size of sizes) {
      if (!plan.cases.has(size.name)) continue
      const { result, failures } = await runThroughputCase(size.name, size.title, size.path, running, plan)
      out.throughput.push(result)
      out.failures.push(...failures)
    }
    if (plan.cases.has('side-by-side')) {
      const { result, failures } = await runSideBySideCase(running, plan, ctx.upstreamPid)
      out.sideBySide = result
      out.failures.push(...failures)
    }
    if (plan.cases.has('rate')) {
      const { result, failures } = await runRateCase(running, plan)
      out.rate = result
      out.failures.push(...failures)
    }
  } finally {
    for (const system of running) await system.stop()
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const plan = parsePlan(argv)
  if (plan.render !== undefined) {
    log(`rewrote\n  ${(await renderSaved(plan.render)).join('\n  ')}`)
    return 0
  }
  installCleanup()
  const date = new Date()
  const started = performance.now()
  const loadAtStart = loadavg()[0]
  const needed = ['nginx', ...(plan.systems.includes('haproxy') ? ['haproxy'] : [])]
  const tools = ensureTools(needed)
  const workDir = await mkdtemp(join(tmpdir(), 'outrigger-bench-'))
  removeAtExit(workDir)
  const out: Collected = { systems: [], throughput: [], failures: [], footprintFiles: [] }
  try {
    const upstream = await startUpstream(tools.nginx, workDir)
    const ctx: SystemContext = { upstreamPort: upstream.port, upstreamPid: upstream.pid, workDir }
    const casesOnSharedSystems = ['throughput-1k', 'throughput-64k', 'side-by-side', 'rate'] as const
    if (casesOnSharedSystems.some((c) => plan.cases.has(c))) {
      await measureSystems(plan, ctx, tools, out)
    }
    if (plan.cases.has('retries')) {
      const { result, failures, systems } = await runRetriesCase(workDir, plan, tools)
      out.retries = result
      out.failures.push(...failures)
      // Named as in the other cases; a run of this case alone describes its systems from here.
      for (const s of systems) if (!out.systems.some((o) => o.name === s.name)) out.systems.push(s)
    }
    if (plan.cases.has('concurrency')) {
      const { result, failures } = await runConcurrencyCase(ctx, plan, upstream.pid)
      out.concurrency = result
      out.failures.push(...failures)
    }
    if (plan.cases.has('h2') || plan.cases.has('grpc')) {
      const h2load = plan.cases.has('h2') ? ensureBinary('h2load', 'nghttp2-client') : undefined
      const { results: cases, failures } = await runProtocolCases(ctx, plan, h2load)
      out.throughput.push(...cases)
      out.failures.push(...failures)
    }
    if (plan.cases.has('scale')) {
      const { result, failures } = await runScaleCase(ctx, plan)
      out.scale = result
      out.failures.push(...failures)
    }
    if (plan.cases.has('mtls')) {
      const { result, failures } = await runMtlsPairCase(ctx, plan)
      out.mtls = result
      out.failures.push(...failures)
    }
    if (plan.cases.has('footprint')) {
      // Its own processes, medians and report (bench/footprint.ts): --short runs its --quick plan.
      const { plan: footprint, quick } = footprintPlan(plan.short ? ['--quick'] : [])
      const results = await runFootprint(ctx, footprint, plan.command)
      out.failures.push(...results.failures.map((error) => ({ where: 'footprint case', error })))
      out.footprintFiles.push(
        ...(await writeFootprint(results, resultsDir, `footprint-${stampFor(date, quick)}`)),
      )
    }
  } finally {
    await stopAll()
    await rm(workDir, { recursive: true, force: true })
  }
  const results: BenchResults = {
    meta: {
      date: `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      command: plan.command,
      mode: plan.short ? 'short' : 'full',
      gitCommit: gitCommit(repoRoot),
      node: process.version,
      cpu: cpus()[0]?.model.trim() ?? 'unknown',
      cores: availableParallelism(),
      memoryGiB: totalmem() / 1024 ** 3,
      kernel: release(),
      upstream: `${toolVersion(tools.nginx, '-v').replace('nginx version: ', '')}, 1 worker, static files (sendfile, open_file_cache)`,
      durationSeconds: (performance.now() - started) / 1000,
      loadAverage: { start: loadAtStart, end: loadavg()[0] },
    },
    systems: out.systems,
    nodePeer: out.nodePeer,
    throughput: out.throughput,
    sideBySide: out.sideBySide,
    rate: out.rate,
    retries: out.retries,
    scale: out.scale,
    concurrency: out.concurrency,
    mtls: out.mtls,
    pending: [],
    failures: out.failures,
  }
  const written = await writeResults(results, stampFor(date, plan.short))
  written.push(...out.footprintFiles)
  log(`done in ${results.meta.durationSeconds.toFixed(0)} s; wrote\n  ${written.join('\n  ')}`)
  return out.failures.length > 0 ? 1 : 0
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  },
)
