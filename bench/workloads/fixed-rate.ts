// Fixed-rate HTTP/1.1 load (open loop): the proxy's CPU seconds per 1000 requests, its RSS, and latency percentiles.

import { cpuSeconds, memory } from '../support/proc-stats.ts'
import type { RunningSystem } from '../systems/system.ts'
import { runPaced } from './paced-client.ts'

export interface RateSample {
  /** Requests per second actually completed. */
  readonly achievedRps: number
  readonly p50us: number
  readonly p90us: number
  readonly p99us: number
  readonly p999us: number
  /** CPU seconds (user + system) the proxy's processes used per 1000 requests; NaN for the direct path. */
  readonly cpuSecPer1k: number
  /** VmRSS of the proxy's processes right after the run, MiB; NaN for the direct path. */
  readonly rssMiB: number
  readonly errors: number
}

export interface RateOptions {
  readonly path: string
  readonly rate: number
  readonly seconds: number
  readonly connections: number
}

export async function runFixedRate(system: RunningSystem, opts: RateOptions): Promise<RateSample> {
  const measured = system.pids.length > 0
  const before = measured ? cpuSeconds(system.pids) : 0
  const result = await runPaced(system.target, opts)
  const used = measured ? cpuSeconds(system.pids) - before : Number.NaN
  const mem = measured ? memory(system.pids) : { rssMiB: Number.NaN }
  return {
    achievedRps: result.completed / result.seconds,
    p50us: result.p50us,
    p90us: result.p90us,
    p99us: result.p99us,
    p999us: result.p999us,
    cpuSecPer1k: result.completed > 0 ? used / (result.completed / 1000) : Number.NaN,
    rssMiB: mem.rssMiB,
    errors: result.errors + result.non2xx,
  }
}
