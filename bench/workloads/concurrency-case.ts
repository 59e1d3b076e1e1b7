// The concurrency case: Outrigger with --concurrency 1, 2 (and the core count) under 1 KiB keep-alive load: req/s, scaling, CPU and RSS summed over its workers.

import type { ConcurrencyCase, ConcurrencyRow, Failure } from '../report/results.ts'
import { get } from '../support/http.ts'
import type { Plan } from '../support/options.ts'
import { freePorts } from '../support/ports.ts'
import { childPids, cpuSeconds, machineBusySeconds, memory } from '../support/proc-stats.ts'
import { ingressSidecar, startOutrigger } from '../systems/outrigger-process.ts'
import type { RunningSystem, SystemContext } from '../systems/system.ts'
import { interleave, log } from './interleave.ts'
import { warmUp } from './protocol-cases.ts'
import { runThroughput, type ThroughputOptions } from './throughput.ts'

export interface ConcurrencySample {
  /** Completed 2xx responses per second. */
  readonly rps: number
  /** autocannon's latency percentiles, milliseconds (1 ms resolution). */
  readonly p50ms: number
  readonly p99ms: number
  readonly errors: number
  /** CPU seconds (user + system) of the supervisor and every worker per 1000 requests. */
  readonly cpuSecPer1k: number
  /** VmRSS of the supervisor and every worker right after the run, MiB. */
  readonly rssMiB: number
  /** Cores the proxy kept busy: its CPU seconds ÷ wall seconds. */
  readonly proxyCores: number
  /** The busiest worker's fraction of the workers' CPU (1 / N is an even spread). */
  readonly busiestWorkerShare: number
  /** Cores the bench process kept busy; autocannon runs in it, on one thread. */
  readonly loadgenCores: number
  /** Cores the nginx upstream (master and its one worker) kept busy. */
  readonly upstreamCores: number
  /** Cores the whole machine kept busy (/proc/stat: everything but idle and iowait). */
  readonly machineCores: number
}

interface Variant extends RunningSystem {
  readonly workers: number
  readonly startupMs: number
}

async function startVariant(workers: number, ctx: SystemContext): Promise<Variant> {
  const [port] = await freePorts(1)
  const proxy = await startOutrigger({
    name: `concurrency-${workers}`,
    workDir: ctx.workDir,
    resources: { 'sidecar.yaml': ingressSidecar(port, ctx.upstreamPort) },
    concurrency: workers,
  })
  const variant: Variant = {
    name: `${workers}`,
    target: { port },
    pids: [proxy.child.pid],
    workers,
    startupMs: proxy.startupMs,
    detail:
      workers === 1
        ? '`--concurrency 1`: one process, no supervisor'
        : `\`--concurrency ${workers}\`: a supervisor and ${workers} workers sharing the port (SO_REUSEPORT)`,
    stop: () => proxy.stop(),
  }
  const found = workers === 1 ? 1 : childPids(proxy.child.pid).length
  const check = await get(port, '/1k')
  if (found !== workers || check.status !== 200 || check.bytes !== 1024) {
    await proxy.stop()
    throw new Error(
      `expected ${workers} worker(s) answering GET /1k with 1024 bytes, found ${found} worker(s), ` +
        `answer ${check.status} with ${check.bytes} bytes`,
    )
  }
  return variant
}

async function measure(v: Variant, opts: ThroughputOptions, upstreamPid: number): Promise<ConcurrencySample> {
  const root = v.pids[0]
  // Read the workers each time: the supervisor restarts a worker that crashed.
  const workers = v.workers === 1 ? [root] : childPids(root)
  const workersBefore = workers.map((pid) => cpuSeconds([pid]))
  const proxyBefore = cpuSeconds([root])
  const upstreamBefore = cpuSeconds([upstreamPid])
  const machineBefore = machineBusySeconds()
  const started = performance.now()
  const selfBefore = process.cpuUsage()
  const r = await runThroughput(v.target, opts)
  const self = process.cpuUsage(selfBefore)
  const wall = (performance.now() - started) / 1000
  const machine = machineBusySeconds() - machineBefore
  const upstream = cpuSeconds([upstreamPid]) - upstreamBefore
  const proxy = cpuSeconds([root]) - proxyBefore
  const perWorker = workers.map((pid, i) => cpuSeconds([pid]) - workersBefore[i])
  const workerTotal = perWorker.reduce((a, b) => a + b, 0)
  // autocannon stops on its next 1 s tick, so a 1.5 s run lasts 2 s: count the requests over the wall time.
  const requests = r.rps * wall
  return {
    rps: r.rps,
    p50ms: r.p50ms,
    p99ms: r.p99ms,
    errors: r.errors + r.non2xx,
    cpuSecPer1k: requests > 0 ? proxy / (requests / 1000) : Number.NaN,
    rssMiB: memory([root]).rssMiB,
    proxyCores: proxy / wall,
    busiestWorkerShare: workerTotal > 0 ? Math.max(...perWorker) / workerTotal : Number.NaN,
    loadgenCores: (self.user + self.system) / 1e6 / wall,
    upstreamCores: upstream / wall,
    machineCores: machine / wall,
  }
}

export async function runConcurrencyCase(
  ctx: SystemContext,
  plan: Plan,
  upstreamPid: number,
): Promise<{ result: ConcurrencyCase; failures: Failure[] }> {
  const failures: Failure[] = []
  const variants: Variant[] = []
  const opts: ThroughputOptions = {
    path: '/1k',
    connections: plan.connections,
    seconds: plan.throughputSeconds,
  }
  try {
    for (const workers of plan.concurrencyWorkers) {
      try {
        const v = await startVariant(workers, ctx)
        variants.push(v)
        log(`concurrency ${workers}: ready in ${v.startupMs.toFixed(0)} ms, ${v.detail}`)
      } catch (err) {
        failures.push({ where: `concurrency start ${workers}`, error: (err as Error).message })
        log(`concurrency start ${workers} FAILED: ${(err as Error).message}`)
      }
    }
    // Every worker starts cold, and each gets only its share of the warm-up load.
    for (const v of variants) {
      await warmUp(
        `concurrency ${v.name}`,
        (seconds) => runThroughput(v.target, { ...opts, seconds }),
        plan.warmupSeconds + 0.5,
        plan.short ? 8 : 15,
      )
    }
    const { results, failed } = await interleave(
      'concurrency',
      variants,
      plan.rounds,
      (v) => measure(v, opts, upstreamPid),
      (_v, s) =>
        `${Math.round(s.rps)} req/s cpu ${(s.cpuSecPer1k * 1000).toFixed(0)} ms/1k rss ${s.rssMiB.toFixed(0)} MiB ` +
        `cores: proxy ${s.proxyCores.toFixed(2)} autocannon ${s.loadgenCores.toFixed(2)} ` +
        `upstream ${s.upstreamCores.toFixed(2)} machine ${s.machineCores.toFixed(2)}` +
        (s.errors > 0 ? ` errors ${s.errors}` : ''),
    )
    for (const [name, error] of Object.entries(failed)) failures.push({ where: `concurrency ${name}`, error })
    const single = results['1']?.median.rps
    const rows: ConcurrencyRow[] = []
    for (const v of variants) {
      const runs = results[v.name]
      if (runs === undefined) continue
      rows.push({
        workers: v.workers,
        detail: v.detail,
        startupMs: v.startupMs,
        ...runs,
        scaling: single === undefined ? Number.NaN : runs.median.rps / single,
      })
    }
    return {
      result: {
        title: 'Outrigger `--concurrency N`, HTTP/1.1 keep-alive, 1 KiB responses',
        path: opts.path,
        connections: opts.connections,
        seconds: opts.seconds,
        rounds: plan.rounds,
        rows,
      },
      failures,
    }
  } finally {
    for (const v of variants) await v.stop()
  }
}
