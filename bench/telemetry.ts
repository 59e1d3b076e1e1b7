// `node bench/telemetry.ts`: what telemetry costs, in one run: Outrigger with metrics off, metrics on, tracing at 0, 1 and 100 %, and the access log.
//
// Every variant is the same inbound sidecar (ingress listener → the shared nginx upstream) with a different
// telemetry configuration, as a user would write it: a Telemetry resource that disables ALL_METRICS for
// "off", the bootstrap's `telemetry.tracing` (an OTLP/HTTP sink in this process receives and drops the
// spans) and `telemetry.accessLog` (a file in the scratch directory). Three measurements:
// 1. saturated throughput: all variants loaded at the same moment, pinned to one shared core, for
//    `--rounds` rounds in each of `--processes` groups of freshly started processes (as bench/paired.ts does),
//    each variant's req/s ÷ the first variant's ("off" by default) taken per round, then the median over groups;
// 2. CPU per request at a fixed rate (`--rate`, 1000 req/s), one variant at a time (the last group's processes), in `--rate-rounds`
//    interleaved rounds (one 10-s run of each varies by ±10 % with GC timing; the median of per-round ratios holds);
// 3. RSS after the fixed-rate runs.
// The issue's target: metrics + 1 % tracing together cost at most 10 % of saturated throughput, 10 % of CPU
// per request at 1000 req/s, and 15 MiB of RSS. `outrigger tap` (issue 20): with no tap attached ("metrics": the tap
// hub is then not among the observers) the hook costs at most 1 % of CPU per request; "metrics-tap-none" holds a
// tap that matches nothing open, "metrics-tap-all" one that streams every request to the bench.
//
//   node bench/telemetry.ts [--processes 3] [--rounds 3] [--seconds 4] [--warmup 10] [--rate 1000] [--rate-seconds 10] [--rate-rounds 5]
//                           [--variants off,metrics,metrics-trace-1,metrics-trace-0,metrics-trace-100,metrics-access-log,
//                                       metrics-tap-none,metrics-tap-all]
// The live view's cost (issue 20's target: at most 3 % of CPU per request at 1000 req/s) is
// `--variants metrics-live-off,metrics-live`; the other variants run the bootstrap's default, live off.
// `metrics-live-dashboard` adds an open admin dashboard: this process polls admin as the page does (docs/dashboard.md).
// Fewer variants at once give each a larger share of the shared core, and steadier ratios.
//
// Writes bench/results/telemetry-<date>.md with the command and the numbers.

import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { stampFor } from './report/write.ts'
import { stopAll } from './support/children.ts'
import { onSharedCore, sharedCorePlan } from './support/cpu-affinity.ts'
import { freePorts } from './support/ports.ts'
import { cpuSeconds, memory } from './support/proc-stats.ts'
import { groupedRatios, medianOverGroups } from './support/process-groups.ts'
import { meanWithInterval, median, rotate } from './support/stats.ts'
import { gitCommit } from './support/tools.ts'
import { ingressSidecar, repoRoot, startOutrigger } from './systems/outrigger-process.ts'
import type { RunningSystem } from './systems/system.ts'
import { startScratchUpstream } from './systems/upstream.ts'
import { metricsOffResource } from './workloads/metrics-off.ts'
import { runPaced } from './workloads/paced-client.ts'
import { loadTogether, type TogetherSample } from './workloads/side-by-side.ts'

const { values } = parseArgs({
  options: {
    /** Groups of fresh processes for the saturated part, each loaded for `--rounds` rounds (as bench/paired.ts). */
    processes: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    warmup: { type: 'string', default: '10' },
    rate: { type: 'string', default: '1000' },
    'rate-seconds': { type: 'string', default: '10' },
    /** Fixed-rate rounds: every variant runs once per round, the rounds interleaved. */
    'rate-rounds': { type: 'string', default: '5' },
    /** A subset of the variants by name, the first being the one the others are compared with. */
    variants: { type: 'string' },
  },
})
const processes = Math.max(1, Number(values.processes))
const rounds = Number(values.rounds)
const seconds = Number(values.seconds)
const rate = Number(values.rate)
const rateSeconds = Number(values['rate-seconds'])
const rateRounds = Math.max(1, Number(values['rate-rounds']))

interface Variant {
  readonly name: string
  readonly label: string
  readonly metrics: boolean
  /** Sampling percent, or undefined: no tracing configured. */
  readonly tracing?: number
  readonly accessLog?: boolean
  /** The bootstrap's `live.enabled` (the live view's windowed numbers and busiest paths; default false). */
  readonly live?: boolean
  /** An admin dashboard open on the proxy: its polls, made by this process, through the whole run. */
  readonly dashboard?: boolean
  /** An admin /tap query the bench holds open (reading and discarding its events) for the whole run. */
  readonly tap?: string
}

const allVariants: readonly Variant[] = [
  { name: 'off', label: 'metrics off, no tracing, no access log', metrics: false },
  { name: 'metrics', label: 'metrics (the default)', metrics: true },
  { name: 'metrics-trace-1', label: 'metrics + tracing 1 %', metrics: true, tracing: 1 },
  { name: 'metrics-trace-0', label: 'metrics + tracing 0 %', metrics: true, tracing: 0 },
  { name: 'metrics-trace-100', label: 'metrics + tracing 100 %', metrics: true, tracing: 100 },
  { name: 'metrics-access-log', label: 'metrics + access log (file)', metrics: true, accessLog: true },
  {
    name: 'metrics-live-off',
    label: 'metrics, live view off (`live.enabled: false`)',
    metrics: true,
    live: false,
  },
  {
    name: 'metrics-live',
    label: 'metrics + live view (`live.enabled: true`, as config/default.yaml)',
    metrics: true,
    live: true,
  },
  {
    name: 'metrics-live-dashboard',
    label: 'metrics + live view + the admin dashboard open',
    metrics: true,
    live: true,
    dashboard: true,
  },
  // `outrigger tap`: with no tap attached (the "metrics" variant) the hub is not among the observers at all.
  {
    name: 'metrics-tap-none',
    label: 'metrics + a tap that matches nothing',
    metrics: true,
    tap: 'authority=no-such-host.example',
  },
  { name: 'metrics-tap-all', label: 'metrics + a tap that matches every request', metrics: true, tap: '' },
]
const variants: readonly Variant[] =
  values.variants === undefined
    ? allVariants
    : values.variants.split(',').map((name) => {
        const variant = allVariants.find((v) => v.name === name)
        if (variant === undefined)
          throw new Error(`unknown variant ${name} (${allVariants.map((v) => v.name).join(', ')})`)
        return variant
      })

/** Holds admin /tap?`query` open for the run, reading and dropping what it streams; returns the close. */
async function holdTap(adminPort: number, query: string): Promise<() => void> {
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port: adminPort, path: `/tap?${query}`, agent: false }, resolve)
      .on('error', reject)
      .end()
  })
  if (res.statusCode !== 200) throw new Error(`/tap?${query} answered ${res.statusCode}`)
  res.resume()
  res.on('error', () => {})
  return () => res.destroy()
}

/**
 * What an open dashboard asks admin (src/admin/dashboard/dashboard.js): each second the last seconds of
 * history and the 10 s stat table, every two seconds the config and the clusters. Returns a stop function.
 */
function pollLikeDashboard(adminPort: number): () => void {
  const get = (path: string) =>
    fetch(`http://127.0.0.1:${adminPort}${path}`).then(
      (res) => res.arrayBuffer(),
      () => undefined,
    )
  let tick = 0
  const timer = setInterval(() => {
    void get('/live/history?by=service&seconds=5')
    void get('/live/stat?by=service&window=10s')
    if (tick++ % 2 === 0) {
      void get('/live/config')
      void get('/clusters?format=json')
    }
  }, 1000)
  return () => clearInterval(timer)
}

/** An OTLP/HTTP endpoint that reads and drops every export (counting them), so exporting costs the proxy what it would. */
async function startOtlpSink(): Promise<{ port: number; exports: () => number; close: () => void }> {
  let exports = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      exports++
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    exports: () => exports,
    close: () => server.close(),
  }
}

const { workDir, upstream } = await startScratchUpstream('telemetry')
const sink = await startOtlpSink()

/** Starts one variant's proxy (with its tap or dashboard polls, if it has them). */
async function startVariant(v: Variant): Promise<RunningSystem> {
  const [port] = await freePorts(1)
  const telemetry: string[] = []
  if (v.tracing !== undefined)
    telemetry.push(
      `  tracing: {otlpEndpoint: 'http://127.0.0.1:${sink.port}/v1/traces', samplingPercent: ${v.tracing}}`,
    )
  if (v.accessLog === true)
    telemetry.push(`  accessLog: {path: ${join(workDir, `${v.name}-access.log`)}, encoding: TEXT}`)
  const proxy = await startOutrigger({
    name: v.name,
    workDir,
    resources: {
      'sidecar.yaml': ingressSidecar(port, upstream.port),
      ...(v.metrics ? {} : { 'telemetry.yaml': metricsOffResource }),
    },
    extraBootstrap:
      (telemetry.length === 0 ? '' : `telemetry:\n${telemetry.join('\n')}\n`) +
      (v.live === undefined ? '' : `live: {enabled: ${v.live}}\n`),
  })
  const closeTap = v.tap === undefined ? undefined : await holdTap(proxy.adminPort, v.tap)
  const stopPolling = v.dashboard === true ? pollLikeDashboard(proxy.adminPort) : undefined
  return {
    name: v.name,
    target: { port },
    pids: [proxy.child.pid],
    detail: v.label,
    stop: () => {
      closeTap?.()
      stopPolling?.()
      return proxy.stop()
    },
  }
}

/** Every variant started afresh, one variant further first each group (as bench/paired.ts); in --variants order. */
async function startGroup(group: number): Promise<RunningSystem[]> {
  const started = new Array<RunningSystem>(variants.length)
  for (const i of rotate(
    variants.map((_, k) => k),
    group,
  ))
    started[i] = await startVariant(variants[i])
  return started
}

process.stderr.write(
  `telemetry: ${variants.map((v) => v.name).join(', ')}; ${processes} process groups of ${rounds} rounds of ${seconds} s\n`,
)

const opts = { path: '/1k', connections: 50 }
async function saturated(systems: readonly RunningSystem[], group: number): Promise<TogetherSample[][]> {
  await loadTogether(systems, { ...opts, seconds: Number(values.warmup) })
  const recorded = []
  for (let r = 0; r < rounds; r++) {
    const round = await loadTogether(systems, { ...opts, seconds })
    recorded.push(round)
    process.stderr.write(
      `group ${group + 1}/${processes} round ${r + 1}/${rounds}: ${round.map((x, i) => `${variants[i].name} ${Math.round(x.rps)}`).join(' | ')}\n`,
    )
  }
  return recorded
}
const sharedCore = sharedCorePlan()
/**
 * Saturated rounds in `--processes` groups of fresh processes (a process that settles into slower code
 * stays slower for all its rounds: bench/results/paired-rerun-2026-12-07.md). The last group's
 * processes stay up for the fixed-rate part.
 */
const saturatedRps: number[][][] = []
let systems: readonly RunningSystem[] = []
for (let g = 0; g < processes; g++) {
  const group = await startGroup(g)
  const recorded =
    sharedCore === undefined
      ? await saturated(group, g)
      : await onSharedCore(
          group.flatMap((s) => s.pids),
          [upstream.pid],
          () => saturated(group, g),
        )
  saturatedRps.push(recorded.map((round) => round.map((x) => x.rps)))
  if (g === processes - 1) systems = group
  else for (const system of group) await system.stop()
}

/** One fixed-rate run of one variant. */
interface FixedRun {
  readonly cpuUsPerRequest: number
  readonly p99us: number
  readonly rssMiB: number
  readonly errors: number
}

/** One variant at the fixed rate while the others idle: its CPU per request and p99, and its RSS right after. */
async function fixedRun(s: RunningSystem): Promise<FixedRun> {
  const before = cpuSeconds(s.pids)
  const result = await runPaced(s.target, { path: opts.path, rate, seconds: rateSeconds, connections: 16 })
  const cpu = cpuSeconds(s.pids) - before
  return {
    cpuUsPerRequest: (cpu * 1e6) / Math.max(1, result.completed),
    p99us: result.p99us,
    rssMiB: memory(s.pids).rssMiB,
    errors: result.errors + result.non2xx,
  }
}

/**
 * CPU per request at a fixed rate, `--rate-rounds` rounds: each round runs every variant once, one at a
 * time, starting one variant further each round (so that no variant always runs first after the saturated
 * load, or last), pinned as in the saturated part. Per variant the median over rounds; against the first
 * variant, the median of each round's ratio, with the rounds' lowest and highest ratio to show the spread.
 */
async function fixedRounds(): Promise<FixedRun[][]> {
  const runs: FixedRun[][] = systems.map(() => [])
  for (let r = 0; r < rateRounds; r++) {
    for (let k = 0; k < systems.length; k++) {
      const i = (r + k) % systems.length
      const run = await fixedRun(systems[i])
      runs[i].push(run)
      process.stderr.write(
        `fixed rate round ${r + 1}/${rateRounds} ${systems[i].name}: ${run.cpuUsPerRequest.toFixed(1)} µs/request\n`,
      )
    }
  }
  return runs
}
const fixedRuns =
  sharedCore === undefined
    ? await fixedRounds()
    : await onSharedCore(
        systems.flatMap((s) => s.pids),
        [upstream.pid],
        fixedRounds,
      )
const fixed = fixedRuns.map((runs) => ({
  cpuUsPerRequest: median(runs.map((run) => run.cpuUsPerRequest)),
  p99us: median(runs.map((run) => run.p99us)),
  rssMiB: runs[runs.length - 1].rssMiB,
  errors: runs.reduce((sum, run) => sum + run.errors, 0),
}))
/** Per variant, each round's CPU per request ÷ the first variant's in the same round. */
const cpuRatios = fixedRuns.map((runs) =>
  runs.map((run, r) => run.cpuUsPerRequest / fixedRuns[0][r].cpuUsPerRequest),
)
const spanExports = sink.exports()
sink.close()
await stopAll()

const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`
const off = fixed[0]
const lines = [
  '# Telemetry cost',
  '',
  `Made by \`node bench/telemetry.ts ${process.argv.slice(2).join(' ')}\` at commit \`${gitCommit(repoRoot)}\`, ` +
    `node ${process.version}. Saturated: ${processes} groups of fresh processes (each variant started afresh per ` +
    `group), all variants loaded at once (autocannon, 50 connections each, 1 KiB, ` +
    `${seconds} s × ${rounds} rounds per group after ${values.warmup} s of warm-up)` +
    (sharedCore === undefined
      ? ', unpinned'
      : `, pinned to CPU ${sharedCore.systemsCpu} (clients and upstream on ${sharedCore.clientCpus})`) +
    `; ratios per round to "${variants[0].name}", each group's median of them, then the median over groups ` +
    `[lowest, highest group]; req/s the median over groups of each group's median. Fixed rate, on the last group's processes: ${rate} req/s for ${rateSeconds} s, one variant ` +
    `at a time, ${rateRounds} rounds (each round starts one variant further), pinned as above; CPU per request is the median ` +
    `over rounds, "vs" the median of each round's ratio to "${variants[0].name}" [lowest, highest round], then the mean ratio with ` +
    `its 95 % confidence interval over the rounds (Student's t); RSS after the last round. ` +
    `The OTLP sink received ${spanExports} exports.`,
  '',
  `| Variant | saturated req/s ÷ ${variants[0].name} [groups] | median req/s | CPU µs/request at fixed rate | vs ${variants[0].name} [rounds] | mean, 95 % CI | RSS MiB | vs ${variants[0].name} | p99 µs | errors |`,
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...variants.map((v, i) => {
    const ratios = groupedRatios(saturatedRps, i)
    const f = fixed[i]
    const cpu = cpuRatios[i]
    const ci = meanWithInterval(cpu)
    return `| ${v.label} | ${ratios.median.toFixed(3)}× [${ratios.lowest.toFixed(3)}, ${ratios.highest.toFixed(3)}] | ${Math.round(medianOverGroups(saturatedRps, i))} | ${f.cpuUsPerRequest.toFixed(1)} | ${pct(median(cpu) - 1)} [${pct(Math.min(...cpu) - 1)}, ${pct(Math.max(...cpu) - 1)}] | ${pct(ci.mean - 1)} (${pct(ci.low - 1)} to ${pct(ci.high - 1)}) | ${f.rssMiB.toFixed(1)} | ${(f.rssMiB - off.rssMiB).toFixed(1)} | ${Math.round(f.p99us)} | ${f.errors} |`
  }),
  '',
]
const stamp = `telemetry-${stampFor(new Date(), false)}`
let file = join(repoRoot, 'bench', 'results', `${stamp}.md`)
for (let n = 2; existsSync(file); n++) file = join(repoRoot, 'bench', 'results', `${stamp}-${n}.md`)
await writeFile(file, lines.join('\n'))
process.stdout.write(`${lines.join('\n')}\nwrote ${file}\n`)
process.exit(0)
