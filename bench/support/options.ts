// The bench's command line (--short, --only, --systems, --rounds) turned into a plan with every duration spelled out.

import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'

/** Case names accepted by --only. `throughput` selects both body sizes. */
export const CASES = [
  'throughput-1k',
  'throughput-64k',
  'side-by-side',
  'rate',
  'retries',
  'scale',
  'h2',
  'grpc',
  'concurrency',
  'mtls',
  'footprint',
] as const
export type CaseName = (typeof CASES)[number]

/**
 * What --short runs without --only: the HTTP/1.1 cases against every system, under 2 minutes on 2 cores.
 * The others (retries, scale, concurrency, h2, grpc, mtls, footprint) each need their own processes and warm-ups, which
 * would take the whole short run past 4 minutes; `--short --only <case>` runs any of them shortened.
 */
export const SHORT_CASES: readonly CaseName[] = ['throughput-1k', 'throughput-64k', 'side-by-side', 'rate']

/** System names accepted by --systems. */
export const SYSTEMS = [
  'direct',
  'outrigger',
  'outrigger-pair',
  'nginx',
  'haproxy',
  'node-peer',
  'node-floor',
  'node-floor-envoy',
  'outrigger-baseline',
] as const
export type SystemName = (typeof SYSTEMS)[number]

export interface Plan {
  readonly short: boolean
  readonly cases: ReadonlySet<CaseName>
  readonly systems: readonly SystemName[]
  /** Interleaved rounds (A B C …, B C … A, …); the median of the rounds is reported. */
  readonly rounds: number
  /** Seconds of unrecorded load per system and body size before the first round. */
  readonly warmupSeconds: number
  readonly connections: number
  readonly throughputSeconds: number
  /** Rounds and seconds per round of the side-by-side case (Outrigger and one other system loaded together). */
  readonly sideBySideRounds: number
  readonly sideBySideSeconds: number
  /** Seconds per round the Node peer candidates are loaded side by side to pick the faster one. */
  readonly peerPickSeconds: number
  readonly rate: number
  readonly rateSeconds: number
  readonly rateConnections: number
  readonly scaleSizes: readonly number[]
  readonly scaleRounds: number
  readonly compileRepeats: number
  /** Outrigger `--concurrency` values the concurrency case compares: 1, 2 and the core count when more. */
  readonly concurrencyWorkers: readonly number[]
  /** Seconds of each measurement of the mTLS pair case (throughput, fixed rate, handshakes). */
  readonly mtlsSeconds: number
  /** The command line that made the results, for the report. */
  readonly command: string
  /** --render <results.json>: only rewrite that run's markdown and chart (after changing the report code). */
  readonly render?: string
  /** --baseline <rev>: Outrigger built from that git revision runs as one more system. */
  readonly baseline?: string
}

export const usage = `usage: npm run bench -- [--short] [--only <case,…>] [--systems <system,…>] [--rounds <n>]
  --short     development mode, under 2 min: ${SHORT_CASES.join(', ')} unless --only says otherwise;
              short runs, fewer rounds, scale up to 1,000 services
  --only      cases: ${CASES.join(', ')} (or 'throughput' for both sizes)
  --systems   systems: ${SYSTEMS.join(', ')} (direct is always included when latency is compared)
  --rounds    interleaved rounds per case (default 3, short 2)
  --baseline  a git revision: also run Outrigger built from it, to show what a change did to the hot path
  --render    <bench/results/….json>: rewrite that run's .md and .svg (and latest.* for a full run), measure nothing
`

export function parsePlan(argv: readonly string[]): Plan {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      short: { type: 'boolean', default: false },
      only: { type: 'string' },
      systems: { type: 'string' },
      rounds: { type: 'string' },
      render: { type: 'string' },
      baseline: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(usage)
    process.exit(0)
  }
  const short = values.short === true
  const cases = new Set<CaseName>()
  const defaultCases = short ? SHORT_CASES : CASES
  for (const name of (values.only ?? defaultCases.join(',')).split(',').filter(Boolean)) {
    if (name === 'throughput') {
      cases.add('throughput-1k')
      cases.add('throughput-64k')
    } else if ((CASES as readonly string[]).includes(name)) cases.add(name as CaseName)
    else throw new Error(`unknown case '${name}'\n${usage}`)
  }
  const systems: SystemName[] = []
  for (const name of (values.systems ?? SYSTEMS.join(',')).split(',').filter(Boolean)) {
    if (!(SYSTEMS as readonly string[]).includes(name)) throw new Error(`unknown system '${name}'\n${usage}`)
    systems.push(name as SystemName)
  }
  if (values.baseline !== undefined && !systems.includes('outrigger-baseline'))
    systems.push('outrigger-baseline')
  // Added latency is measured against the direct path, so it always takes part.
  if (!systems.includes('direct')) systems.unshift('direct')
  const rounds = values.rounds === undefined ? (short ? 2 : 3) : Number(values.rounds)
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds must be a positive integer\n${usage}`)
  return {
    short,
    cases,
    systems,
    rounds,
    warmupSeconds: short ? 0.5 : 2,
    connections: 50,
    throughputSeconds: short ? 1 : 10,
    sideBySideRounds: short ? 2 : 8,
    sideBySideSeconds: short ? 1 : 4,
    peerPickSeconds: short ? 1 : 3,
    rate: 1000,
    rateSeconds: short ? 1.5 : 10,
    rateConnections: 16,
    scaleSizes: short ? [10, 1000] : [10, 1000, 10_000],
    scaleRounds: short ? 1 : 3,
    compileRepeats: short ? 2 : 3,
    concurrencyWorkers: [...new Set([1, 2, Math.max(2, availableParallelism())])],
    mtlsSeconds: short ? 3 : 10,
    command: ['npm run bench', ...(argv.length > 0 ? ['--', ...argv] : [])].join(' '),
    render: values.render,
    baseline: values.baseline,
  }
}
