// The closed-loop throughput case for one body size: every system loaded with 50 keep-alive connections, interleaved rounds.

import type { Failure, ThroughputCase } from '../report/results.ts'
import type { Plan } from '../support/options.ts'
import type { RunningSystem } from '../systems/system.ts'
import { interleave } from './interleave.ts'
import { runThroughput } from './throughput.ts'

export async function runThroughputCase(
  name: string,
  title: string,
  path: string,
  systems: readonly RunningSystem[],
  plan: Plan,
): Promise<{ result: ThroughputCase; failures: Failure[] }> {
  const opts = { path, connections: plan.connections, seconds: plan.throughputSeconds }
  const { results, failed } = await interleave(
    name,
    systems,
    plan.rounds,
    (s) => runThroughput(s.target, opts),
    (_s, r) =>
      `${Math.round(r.rps)} req/s p99 ${r.p99ms} ms${r.errors + r.non2xx > 0 ? ` errors ${r.errors} non2xx ${r.non2xx}` : ''}`,
  )
  return {
    result: {
      name,
      title,
      path,
      connections: plan.connections,
      seconds: plan.throughputSeconds,
      rounds: plan.rounds,
      systems: results,
    },
    failures: Object.entries(failed).map(([system, error]) => ({ where: `${name} ${system}`, error })),
  }
}
