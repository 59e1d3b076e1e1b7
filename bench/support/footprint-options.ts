// The footprint case's command line (--processes, --connections, --protocols, --quick, --image, --main, --out) as a plan.

import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { resultsDir } from '../report/write.ts'
import type { FootprintPlan } from '../workloads/footprint-case.ts'
import type { IdleProtocol } from '../workloads/idle-connections.ts'

export const footprintUsage = `usage: node bench/footprint.ts [--processes N] [--connections N] [--protocols …] [--connections-only] [--quick] [--image] [--main <script>] [--out <dir>] [--live sidecar|default-config]
  --processes    fresh processes per measurement (default 3; --quick 1)
  --connections  idle connections per protocol (default 10000; --quick 1000), as many as open within 45 s
  --protocols    of http1,http2,mtls (default all three)
  --connections-only  only the per-connection processes (no idle, rate or burst sequence)
  --quick        smoke test, about a minute: 1 process, 1,000 connections, 15 s at 1000 req/s, a 6 s burst read after 10 and 20 s
  --image        build the image (scripts/image/build.sh, minutes) before reading its size; without it an image built earlier is read
  --main         the entry script (default dist/main.js; src/main.ts measures the sources without a build)
  --out          where the report goes (default bench/results)
  --live         sidecar (default: the bootstrap's default, the live view off, as an injected sidecar runs) or
                 default-config (config/default.yaml's: on, as npm start and the image's default command run)
usage: node bench/footprint.ts --render <footprint-….json>   rewrite that run's markdown after a change to report/
`

function liveSetting(text: string | undefined): FootprintPlan['live'] {
  if (text === 'sidecar' || text === 'default-config') return text
  throw new Error(`--live is sidecar or default-config\n${footprintUsage}`)
}

/** The plan of a full run or of --quick, with --processes and --connections applied. */
export function footprintPlan(argv: readonly string[]): { plan: FootprintPlan; quick: boolean; out: string } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      processes: { type: 'string' },
      connections: { type: 'string' },
      protocols: { type: 'string', default: 'http1,http2,mtls' },
      'connections-only': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      image: { type: 'boolean', default: false },
      main: { type: 'string' },
      out: { type: 'string' },
      live: { type: 'string', default: 'sidecar' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(footprintUsage)
    process.exit(0)
  }
  const quick = values.quick === true
  const positive = (name: string, text: string | undefined, fallback: number): number => {
    const n = text === undefined ? fallback : Number(text)
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--${name} must be a positive integer\n${footprintUsage}`)
    return n
  }
  const protocols = (values.protocols ?? '').split(',').filter(Boolean)
  for (const p of protocols)
    if (!['http1', 'http2', 'mtls'].includes(p)) throw new Error(`unknown protocol '${p}'\n${footprintUsage}`)
  return {
    quick,
    out: values.out ?? resultsDir,
    plan: {
      processes: positive('processes', values.processes, quick ? 1 : 3),
      connections: positive('connections', values.connections, quick ? 1_000 : 10_000),
      openWithinSeconds: 45,
      protocols: protocols as IdleProtocol[],
      connectionsOnly: values['connections-only'] === true,
      idleSeconds: quick ? 3 : 5,
      rate: 1000,
      rateSeconds: quick ? 15 : 60,
      burstSeconds: quick ? 6 : 15,
      quietChecks: quick ? [10, 20] : [30, 60],
      mainScript: values.main === undefined ? undefined : resolve(values.main),
      buildImage: values.image === true,
      live: liveSetting(values.live),
    },
  }
}
