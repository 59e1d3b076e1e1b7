// The scale case: Outrigger with 10, 1,000 and 10,000 services and routes: start-up, compile time, RSS, and p99 at a fixed rate.

import { join } from 'node:path'
import type { Failure, ScaleCase, ScaleRow } from '../report/results.ts'
import { startChild } from '../support/children.ts'
import { get } from '../support/http.ts'
import type { Plan } from '../support/options.ts'
import { freePorts } from '../support/ports.ts'
import { memory } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import { egressSidecar, type OutriggerProcess, startOutrigger } from '../systems/outrigger-process.ts'
import type { RunningSystem, SystemContext } from '../systems/system.ts'
import type { CompileTimes } from './compile-child.ts'
import { runFixedRate } from './fixed-rate.ts'
import { interleave, log } from './interleave.ts'
import { scaleResources, serviceName } from './scale-config.ts'
import { runThroughput } from './throughput.ts'

const compileChild = join(import.meta.dirname, 'compile-child.ts')

interface Prepared {
  readonly system: RunningSystem
  readonly proxy: OutriggerProcess
  readonly services: number
  readonly yamlMiB: number
  readonly rssIdleMiB: number
  readonly compile?: ScaleRow['compile']
  readonly compileError?: string
}

/** Runs compile-child.ts on a bootstrap and returns its cold and warm timings. */
async function timeCompile(bootstrap: string, repeats: number): Promise<NonNullable<ScaleRow['compile']>> {
  const child = startChild('compile timing', process.execPath, [compileChild, bootstrap, String(repeats)])
  const code = await child.exited
  const line = child.output().trim().split('\n').at(-1) ?? ''
  if (code !== '0' || !line.startsWith('{'))
    throw new Error(`compile-child exited ${code}: ${child.output().slice(-2000)}`)
  await child.stop()
  const t = JSON.parse(line) as CompileTimes
  const warmLoad = t.loadMs.slice(1)
  const warmCompile = t.compileMs.slice(1)
  return {
    coldLoadMs: t.loadMs[0],
    coldCompileMs: t.compileMs[0],
    warmLoadMs: warmLoad.length > 0 ? median(warmLoad) : t.loadMs[0],
    warmCompileMs: warmCompile.length > 0 ? median(warmCompile) : t.compileMs[0],
    heapUsedMiB: t.heapUsedMiB,
  }
}

async function prepare(n: number, ctx: SystemContext, plan: Plan): Promise<Prepared> {
  const [egress] = await freePorts(1)
  const resources = { 'sidecar.yaml': egressSidecar(egress), ...scaleResources(n, egress, ctx.upstreamPort) }
  const yamlMiB =
    Object.values(resources).reduce((sum, text) => sum + Buffer.byteLength(text), 0) / (1024 * 1024)
  const proxy = await startOutrigger({
    name: `scale-${n}`,
    workDir: ctx.workDir,
    resources,
    readyTimeoutMs: 300_000,
  })
  const system: RunningSystem = {
    name: `${n}`,
    // The last service: a linear scan of virtual hosts would show here.
    target: { port: egress, host: serviceName(n - 1) },
    pids: [proxy.child.pid],
    detail: `${n} ServiceEntries + ${n} VirtualServices`,
    stop: () => proxy.stop(),
  }
  const check = await get(egress, '/1k', system.target.host)
  if (check.status !== 200 || check.bytes !== 1024) {
    await proxy.stop()
    throw new Error(`GET /1k via ${serviceName(n - 1)} answered ${check.status} with ${check.bytes} bytes`)
  }
  const rssIdleMiB = memory(system.pids).rssMiB
  log(
    `scale ${n}: ready in ${proxy.startupMs.toFixed(0)} ms, ${yamlMiB.toFixed(1)} MiB YAML, RSS ${rssIdleMiB.toFixed(0)} MiB`,
  )
  try {
    const compile = await timeCompile(join(proxy.dir, 'bootstrap.yaml'), plan.compileRepeats)
    log(
      `scale ${n}: load ${compile.coldLoadMs.toFixed(0)} ms + compile ${compile.coldCompileMs.toFixed(0)} ms (cold)`,
    )
    return { system, proxy, services: n, yamlMiB, rssIdleMiB, compile }
  } catch (err) {
    return { system, proxy, services: n, yamlMiB, rssIdleMiB, compileError: (err as Error).message }
  }
}

export async function runScaleCase(
  ctx: SystemContext,
  plan: Plan,
): Promise<{ result: ScaleCase; failures: Failure[] }> {
  const failures: Failure[] = []
  const prepared: Prepared[] = []
  try {
    for (const n of plan.scaleSizes) {
      try {
        prepared.push(await prepare(n, ctx, plan))
      } catch (err) {
        failures.push({ where: `scale ${n}`, error: (err as Error).message })
        log(`scale ${n} FAILED: ${(err as Error).message}`)
      }
    }
    for (const p of prepared) {
      await runThroughput(p.system.target, {
        path: '/1k',
        connections: plan.connections,
        seconds: plan.warmupSeconds,
      })
    }
    const opts = {
      path: '/1k',
      rate: plan.rate,
      seconds: plan.rateSeconds,
      connections: plan.rateConnections,
    }
    const { results, failed } = await interleave(
      'scale rate',
      prepared.map((p) => p.system),
      plan.scaleRounds,
      (s) => runFixedRate(s, opts),
      (_s, r) => `p50 ${r.p50us} µs p99 ${r.p99us} µs rss ${r.rssMiB.toFixed(0)} MiB`,
    )
    for (const [system, error] of Object.entries(failed))
      failures.push({ where: `scale rate ${system}`, error })
    const rows: ScaleRow[] = []
    for (const p of prepared) {
      const rate = results[p.system.name]
      if (rate === undefined) continue
      rows.push({
        services: p.services,
        routes: p.services * 2,
        yamlMiB: p.yamlMiB,
        startupMs: p.proxy.startupMs,
        compile: p.compile,
        compileError: p.compileError,
        rssIdleMiB: p.rssIdleMiB,
        rssAfterLoadMiB: memory(p.system.pids).rssMiB,
        rate,
      })
    }
    return {
      result: {
        title: `Outrigger egress with N ServiceEntries + N VirtualServices (2 routes each), ${plan.rate} req/s to the last service`,
        rate: plan.rate,
        seconds: plan.rateSeconds,
        rounds: plan.scaleRounds,
        rows,
      },
      failures,
    }
  } finally {
    for (const p of prepared) await p.proxy.stop()
  }
}
