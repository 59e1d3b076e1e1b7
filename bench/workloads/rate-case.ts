// The fixed-rate case: 1000 req/s of 1 KiB through each system, for CPU per request, RSS and latency added over the direct path.

import type { Failure, RateCase } from '../report/results.ts'
import type { Plan } from '../support/options.ts'
import type { RunningSystem } from '../systems/system.ts'
import { runFixedRate } from './fixed-rate.ts'
import { interleave } from './interleave.ts'

export function runRateCase(
  systems: readonly RunningSystem[],
  plan: Plan,
): Promise<{ result: RateCase; failures: Failure[] }> {
  return measureAtFixedRate(
    'rate',
    systems,
    plan,
    `HTTP/1.1, 1 KiB responses at a fixed ${plan.rate} req/s (open loop, ${plan.rateConnections} keep-alive connections)`,
  )
}

/** Loads each system at the plan's fixed rate in interleaved rounds; latency added is measured against `direct`. */
export async function measureAtFixedRate(
  name: string,
  systems: readonly RunningSystem[],
  plan: Plan,
  title: string,
): Promise<{ result: RateCase; failures: Failure[] }> {
  const opts = { path: '/1k', rate: plan.rate, seconds: plan.rateSeconds, connections: plan.rateConnections }
  // Unrecorded: opens the client's connections and warms its code path, so round 1 is not penalised.
  for (const s of systems) await runFixedRate(s, { ...opts, seconds: Math.min(1, plan.rateSeconds / 2) })
  const { results, failed } = await interleave(
    name,
    systems,
    plan.rounds,
    (s) => runFixedRate(s, opts),
    (_s, r) =>
      `p50 ${r.p50us} µs p99 ${r.p99us} µs` +
      (Number.isFinite(r.cpuSecPer1k)
        ? ` cpu ${(r.cpuSecPer1k * 1000).toFixed(0)} ms/1k rss ${r.rssMiB.toFixed(0)} MiB`
        : '') +
      (r.errors > 0 ? ` errors ${r.errors}` : ''),
  )
  const direct = results.direct?.median
  const systemsOut: RateCase['systems'] = {}
  for (const [system, runs] of Object.entries(results)) {
    systemsOut[system] =
      direct === undefined || system === 'direct'
        ? runs
        : {
            ...runs,
            addedVsDirect: {
              p50us: runs.median.p50us - direct.p50us,
              p90us: runs.median.p90us - direct.p90us,
              p99us: runs.median.p99us - direct.p99us,
            },
          }
  }
  return {
    result: {
      title,
      path: '/1k',
      rate: plan.rate,
      seconds: plan.rateSeconds,
      connections: plan.rateConnections,
      rounds: plan.rounds,
      systems: systemsOut,
    },
    failures: Object.entries(failed).map(([system, error]) => ({ where: `${name} ${system}`, error })),
  }
}
