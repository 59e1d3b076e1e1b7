// Writes a run's results as markdown: Outrigger's ratios against every other system, then one table per case.

import { SYSTEMS } from '../support/options.ts'
import { median } from '../support/stats.ts'
import { fixed, int, ratio, signedUs } from './format.ts'
import type {
  BenchResults,
  MtlsPairCase,
  RateCase,
  SideBySideCase,
  SideBySideRound,
  ThroughputCase,
} from './results.ts'

/** A markdown table; the first column is left-aligned, the others right-aligned unless `left` is set. */
function table(header: readonly string[], rows: readonly (readonly string[])[], left = false): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`
  return [
    line(header),
    line(header.map((_h, i) => (i === 0 || left ? '---' : '---:'))),
    ...rows.map(line),
  ].join('\n')
}

function label(results: BenchResults, name: string): string {
  return results.systems.find((s) => s.name === name)?.label ?? name
}

/** Every system Outrigger is compared with, in the bench's order (all but Outrigger and the pair). */
const COMPARED_ALL = SYSTEMS.filter((n) => n !== 'outrigger' && n !== 'outrigger-pair')

function ratios(results: BenchResults): string {
  const COMPARED = COMPARED_ALL.filter((n) => results.systems.some((s) => s.name === n))
  const header = ['Outrigger …', ...COMPARED.map((n) => `vs ${label(results, n)}`)]
  const rows: string[][] = []
  for (const c of results.throughput) {
    const o = c.systems.outrigger?.median.rps
    rows.push([
      `req/s, ${c.title} (higher is better)`,
      ...COMPARED.map((n) => ratio(o, c.systems[n]?.median.rps)),
    ])
  }
  const side = results.sideBySide
  if (side !== undefined) {
    rows.push([
      'req/s loaded side by side, 1 KiB (higher is better)',
      ...COMPARED.map((n) =>
        side.pairs[n] === undefined ? '—' : sideRatio(side, n, side.pairs[n].rpsRatio),
      ),
    ])
    rows.push([
      'CPU per request loaded side by side, 1 KiB (lower is better)',
      ...COMPARED.map((n) =>
        side.pairs[n] === undefined ? '—' : sideRatio(side, n, side.pairs[n].cpuRatio),
      ),
    ])
  }
  const rate = results.rate
  if (rate !== undefined) {
    const o = rate.systems.outrigger?.median
    rows.push([
      `p99 latency at ${int(rate.rate)} req/s (lower is better)`,
      ...COMPARED.map((n) => ratio(o?.p99us, rate.systems[n]?.median.p99us)),
    ])
    const added = rate.systems.outrigger?.addedVsDirect
    rows.push([
      `added p99 over direct at ${int(rate.rate)} req/s`,
      ...COMPARED.map((n) => {
        if (n === 'direct') return signedUs(added?.p99us)
        const theirs = rate.systems[n]?.addedVsDirect?.p99us
        return `${ratio(added?.p99us, theirs)} (${signedUs(added?.p99us)} vs ${signedUs(theirs)})`
      }),
    ])
    rows.push([
      `CPU per 1000 requests at ${int(rate.rate)} req/s (lower is better)`,
      ...COMPARED.map((n) =>
        n === 'direct' ? '—' : ratio(o?.cpuSecPer1k, rate.systems[n]?.median.cpuSecPer1k),
      ),
    ])
    rows.push([
      'RSS under load (lower is better)',
      ...COMPARED.map((n) => (n === 'direct' ? '—' : ratio(o?.rssMiB, rate.systems[n]?.median.rssMiB))),
    ])
  }
  const retries = results.retries
  if (retries !== undefined) {
    const o = retries.systems.outrigger?.median
    rows.push([
      `CPU per 1000 requests at ${int(retries.rate)} req/s, retrying a flaky service (lower is better)`,
      ...COMPARED.map((n) =>
        n === 'direct' ? '—' : ratio(o?.cpuSecPer1k, retries.systems[n]?.median.cpuSecPer1k),
      ),
    ])
  }
  return table(header, rows)
}

function throughputTable(results: BenchResults, c: ThroughputCase): string {
  const outrigger = c.systems.outrigger?.median.rps
  const rows = Object.entries(c.systems).map(([name, runs]) => {
    const m = runs.median
    return [
      label(results, name),
      int(m.rps),
      fixed(m.mibps, 1),
      int(m.p50ms),
      int(m.p99ms),
      ratio(outrigger, m.rps),
      runs.runs.map((r) => int(r.rps)).join(' / '),
      int(m.errors + m.non2xx),
    ]
  })
  return table(
    ['System', 'req/s', 'MiB/s', 'p50 ms', 'p99 ms', 'Outrigger ÷ this', 'req/s per round', 'errors'],
    rows,
  )
}

/** The median cores the load generator and the upstream kept busy; undefined for runs that did not measure it. */
function medianClientCores(rounds: readonly SideBySideRound[]): number | undefined {
  const measured = rounds.flatMap((r) => (r.clientCores === undefined ? [] : [r.clientCores]))
  return measured.length === 0 ? undefined : median(measured)
}

function clientCores(rounds: readonly SideBySideRound[]): string {
  const cores = medianClientCores(rounds)
  return cores === undefined ? '—' : fixed(cores, 2)
}

/** How many CPUs a taskset list such as "0", "0-2" or "0,2" names. */
function cpuListSize(list: string): number {
  let count = 0
  for (const part of list.split(',')) {
    const [from, to] = part.split('-').map(Number)
    count += to === undefined ? 1 : to - from + 1
  }
  return count
}

/**
 * True when the pair's load generator and upstream kept their CPUs at least 90 % busy: the other system
 * then waited for requests part of the time, so its req/s is not what an even share of the core gives
 * it, and its CPU per request is that of a proxy below saturation (less batching per wake-up).
 */
export function clientBound(side: SideBySideCase, name: string): boolean {
  const pair = side.pairs[name]
  const cores = pair === undefined ? undefined : medianClientCores(pair.rounds)
  if (cores === undefined || side.sharedCore === undefined) return false
  return cores >= 0.9 * cpuListSize(side.sharedCore.clientCpus)
}

/** A side-by-side ratio, marked when the pair was bound by its load generator. */
function sideRatio(side: SideBySideCase, name: string, value: number): string {
  return `${fixed(value, 2)}×${clientBound(side, name) ? ' (client-bound)' : ''}`
}

function sideBySideTable(results: BenchResults, side: SideBySideCase): string {
  const rows = Object.entries(side.pairs).map(([name, pair]) => [
    label(results, name),
    sideRatio(side, name, pair.rpsRatio),
    pair.rounds.map((r) => fixed(r.outriggerRps / r.otherRps, 2)).join(' / '),
    `${int(median(pair.rounds.map((r) => r.outriggerRps)))} / ${int(median(pair.rounds.map((r) => r.otherRps)))}`,
    `${fixed(pair.outriggerCpuUsPerRequest, 1)} / ${fixed(pair.otherCpuUsPerRequest, 1)}`,
    sideRatio(side, name, pair.cpuRatio),
    `${fixed(median(pair.rounds.map((r) => (r.outriggerRps * r.outriggerCpuUsPerRequest) / 1e6)), 2)} / ${fixed(
      median(pair.rounds.map((r) => (r.otherRps * r.otherCpuUsPerRequest) / 1e6)),
      2,
    )}`,
    clientCores(pair.rounds),
    int(pair.rounds.reduce((sum, r) => sum + r.errors, 0)),
  ])
  return table(
    [
      'Loaded beside Outrigger',
      'Outrigger ÷ this, req/s',
      'per round',
      'req/s, Outrigger / this',
      'CPU µs per request, Outrigger / this',
      'Outrigger ÷ this, CPU per request',
      'cores busy, Outrigger / this',
      'cores busy, load generator and upstream',
      'errors',
    ],
    rows,
  )
}

function rateTable(results: BenchResults, rate: RateCase): string {
  const rows = Object.entries(rate.systems).map(([name, runs]) => {
    const m = runs.median
    const a = runs.addedVsDirect
    return [
      label(results, name),
      int(m.achievedRps),
      int(m.p50us),
      int(m.p90us),
      int(m.p99us),
      int(m.p999us),
      a === undefined ? '—' : `${signedUs(a.p50us)} / ${signedUs(a.p90us)} / ${signedUs(a.p99us)}`,
      fixed(m.cpuSecPer1k * 1000, 1),
      fixed(m.rssMiB, 0),
      m.errors === 0
        ? '0'
        : `${int(m.errors)} (${fixed((100 * m.errors) / (rate.rate * rate.seconds), 2)} %)`,
    ]
  })
  return table(
    [
      'System',
      'req/s',
      'p50 µs',
      'p90 µs',
      'p99 µs',
      'p99.9 µs',
      'added p50 / p90 / p99',
      'CPU ms per 1000 req',
      'RSS MiB',
      'failed (share of requests)',
    ],
    rows,
  )
}

function scaleTable(results: BenchResults): string {
  const scale = results.scale
  if (scale === undefined) return ''
  const rows = scale.rows.map((r) => [
    int(r.services),
    int(r.routes),
    fixed(r.yamlMiB, 1),
    int(r.startupMs),
    r.compile === undefined ? '—' : `${int(r.compile.coldLoadMs)} / ${int(r.compile.warmLoadMs)}`,
    r.compile === undefined ? '—' : `${int(r.compile.coldCompileMs)} / ${int(r.compile.warmCompileMs)}`,
    fixed(r.rssIdleMiB, 0),
    fixed(r.rssAfterLoadMiB, 0),
    int(r.rate.median.p50us),
    int(r.rate.median.p99us),
  ])
  const errors = scale.rows
    .filter((r) => r.compileError !== undefined)
    .map(
      (r) => `\nCompile timing failed for ${int(r.services)} services: \`${r.compileError?.split('\n')[0]}\``,
    )
  return (
    table(
      [
        'Services',
        'Routes',
        'YAML MiB',
        'start-up to ready ms',
        'load ms cold / warm',
        'compile ms cold / warm',
        'RSS at ready MiB',
        'RSS after runs MiB',
        'p50 µs',
        'p99 µs',
      ],
      rows,
    ) + errors.join('')
  )
}

function concurrencyTable(results: BenchResults): string {
  const c = results.concurrency
  if (c === undefined) return ''
  const rows = c.rows.map((r) => {
    const m = r.median
    return [
      int(r.workers),
      int(m.rps),
      Number.isFinite(r.scaling) ? `${fixed(r.scaling, 2)}×` : '—',
      int(m.p99ms),
      fixed(m.cpuSecPer1k * 1000, 1),
      fixed(m.rssMiB, 0),
      `${fixed(m.busiestWorkerShare * 100, 0)} %`,
      [m.proxyCores, m.loadgenCores, m.upstreamCores, m.machineCores].map((v) => fixed(v, 2)).join(' / '),
      int(r.startupMs),
      r.runs.map((s) => int(s.rps)).join(' / '),
      int(m.errors),
    ]
  })
  return table(
    [
      'Workers',
      'req/s',
      'scaling (÷ 1 worker)',
      'p99 ms',
      'CPU ms per 1000 req',
      'RSS MiB',
      "busiest worker's CPU share",
      'cores busy: proxy / autocannon / upstream / machine',
      'start-up to ready ms',
      'req/s per round',
      'errors',
    ],
    rows,
  )
}

/** The mTLS pair case: one row per pair, then what mTLS adds, handshakes and memory per connection. */
function mtlsSection(c: MtlsPairCase): string[] {
  const ms = (us: number): string => fixed(us / 1000, 3)
  const rows = (
    [
      ['plain', c.plain],
      ['mTLS', c.mtls],
    ] as const
  ).map(([name, r]) => [
    name,
    int(r.throughput.rps),
    ms(r.rate.p50us),
    ms(r.rate.p90us),
    ms(r.rate.p99us),
    int(r.rate.cpuUsPerRequest),
    int(r.throughput.errors + r.throughput.non2xx + r.rate.errors + r.rate.non2xx),
  ])
  const h = c.handshakes
  const o = c.openConnections
  return [
    `client → Outrigger A (egress) → Outrigger B (ingress) → the nginx upstream, all on 127.0.0.1; the mTLS pair adds ` +
      '`ISTIO_MUTUAL` on A (DestinationRule) and `STRICT` on B (PeerAuthentication) with `outrigger ca` certificates ' +
      `(RSA 2048). req/s: autocannon, ${c.connections} keep-alive connections to \`${c.path}\`, ${c.seconds} s. ` +
      `Latency: the paced client at ${int(c.rate)} req/s over ${c.rateConnections} keep-alive connections, ${c.seconds} s. ` +
      'CPU is user + system µs per completed request of both sidecars (/proc/<pid>/stat). One run per pair, after an unrecorded warm-up.',
    '',
    table(
      [
        'pair',
        `req/s (${c.connections} conns)`,
        `p50 ms @${int(c.rate)}/s`,
        'p90 ms',
        'p99 ms',
        'CPU µs/req (A+B)',
        'errors',
      ],
      rows,
    ),
    '',
    `Added by mTLS at ${int(c.rate)} req/s: p50 ${signedUs(c.added.p50us)}, p90 ${signedUs(c.added.p90us)}, ` +
      `p99 ${signedUs(c.added.p99us)} (Istio publishes +0.23 ms p90 / +0.30 ms p99 for an Envoy mTLS pair, ` +
      'istio.io docs/ops/deployment/performance-and-scalability). ' +
      `CPU per request ${signedUs(c.mtls.rate.cpuUsPerRequest - c.plain.rate.cpuUsPerRequest)} (A+B); ` +
      `req/s mTLS ÷ plain ${ratio(c.mtls.throughput.rps, c.plain.throughput.rps)}.`,
    '',
    `Handshakes per second on B's mTLS port (a new connection per request, ${h.concurrency} at a time, the client ` +
      `presenting a mesh certificate, ${h.seconds} s): ${int(h.perSecond)}${h.failed > 0 ? ` (${int(h.failed)} failed)` : ''}. ` +
      `B's RSS: ${fixed(o.idleMiB, 1)} MiB before, ${fixed(o.openMiB, 1)} MiB with ${int(o.count)} open mTLS connections ` +
      `(${fixed(o.perConnectionKiB, 1)} KiB each).`,
  ]
}

export function markdownFor(results: BenchResults, chartFile: string): string {
  const m = results.meta
  const out: string[] = []
  out.push(`# Outrigger benchmark: ${m.date} (${m.mode} mode)`)
  out.push('')
  out.push(
    `Made by \`${m.command}\` in ${int(m.durationSeconds)} s at commit \`${m.gitCommit}\`, on ${m.cpu} (${m.cores} cores, ` +
      `${int(m.memoryGiB)} GiB), Linux ${m.kernel}, Node ${m.node}. Everything runs on 127.0.0.1: the load generator, ` +
      `the proxy and the upstream share the cores, so absolute numbers are this machine's; the ratios are the point. ` +
      `Upstream for every system: ${m.upstream}. Each number is the median of interleaved rounds (see bench/README.md). ` +
      `Load average (1 min) at start ${fixed(m.loadAverage.start, 2)}, at end ${fixed(m.loadAverage.end, 2)}.`,
  )
  out.push('')
  out.push(`![benchmark chart](${chartFile})`)
  out.push('')
  out.push('## Outrigger compared')
  out.push('')
  out.push('Ratios are Outrigger ÷ the other system, so above 1× means Outrigger has more of it.')
  out.push('')
  out.push(ratios(results))
  for (const c of results.throughput) {
    out.push('', `## Throughput: ${c.title}`, '')
    out.push(
      c.description ??
        `autocannon, ${c.connections} keep-alive connections, one request in flight each, ${c.seconds} s per run, ${c.rounds} rounds. ` +
          'Latencies at saturation are queueing, shown for completeness; autocannon resolves 1 ms.',
    )
    out.push('', throughputTable(results, c))
  }
  if (results.sideBySide !== undefined) {
    const side = results.sideBySide
    out.push('', `## Side by side: ${side.title}`, '')
    const pinning =
      side.sharedCore === undefined
        ? 'The two compete for the same cores with the clients and the upstream, as the scheduler shares them, so req/s ' +
          'here measures work per request (the system that spends less CPU per request serves more), not either ' +
          "system's solo throughput. "
        : `Both systems are pinned to CPU ${side.sharedCore.systemsCpu} (taskset), the load generator and the upstream ` +
          `to ${side.sharedCore.clientCpus}: the scheduler splits the one core evenly between the two busy systems, so ` +
          'the req/s ratio is the ratio of work per request on the same core at the same moment (the inverse of the CPU ' +
          "ratio), not either system's solo throughput. Unpinned, how the scheduler happened to split two cores between " +
          'proxies, clients and upstream moved the req/s ratio by ±10 % from run to run for the same CPU ratio. '
    out.push(
      `Each round loads Outrigger and one other system at the same moment, each with its own autocannon client ` +
        `(${side.connections} keep-alive connections to \`${side.path}\`), for ${side.seconds} s; ${side.rounds} rounds per ` +
        'pair after one unrecorded round. Whatever the shared machine does during a round, it does to both, so the ' +
        "per-round ratio holds within a few percent where the throughput tables' rounds swing by 20 % and more. " +
        pinning +
        "The ratios are medians of the per-round ratios; CPU is user + system seconds of the system's processes from " +
        '/proc/<pid>/stat over the round. Cores busy (req/s × CPU per request) show whether the pair really shared the ' +
        'CPU: when the other system keeps far fewer cores busy than Outrigger, it was not short of CPU but waiting on ' +
        "the load generator (both clients run on the bench process's one thread), so its req/s ratio understates the " +
        'gap. The load generator and upstream column is the cores the bench process and the upstream kept busy; ' +
        'where they were 90 % busy or more, the pair is marked client-bound: the other system waited for requests ' +
        'part of the time, so both its req/s ratio and its CPU per request (a proxy below saturation wakes up for ' +
        'fewer requests at a time) understate the gap. On 2 cores nginx and haproxy are client-bound here: the fixed-' +
        "rate case's CPU per 1000 requests is the fairer comparison with them.",
    )
    out.push('', sideBySideTable(results, side))
  }
  if (results.rate !== undefined) {
    const r = results.rate
    out.push('', `## Fixed rate: ${r.title}`, '')
    out.push(
      `${r.seconds} s per run, ${r.rounds} rounds. Added latency is the system's percentile minus the direct path's. ` +
        'CPU is user + system seconds of the proxy processes from /proc/<pid>/stat over the run, per 1000 completed requests; ' +
        'RSS is VmRSS right after the run. The Outrigger pair counts both sidecars.',
    )
    out.push('', rateTable(results, r))
  }
  if (results.retries !== undefined) {
    const r = results.retries
    const fail = (r.failPercent ?? 0) / 100
    out.push('', `## Retries: ${r.title}`, '')
    out.push(
      `Open loop as in the fixed-rate case, ${r.connections} keep-alive connections, ${r.seconds} s per run, ${r.rounds} rounds. ` +
        'The direct row loads one endpoint: the failures a client sees with no proxy. Failed is the share of requests ' +
        'answered with anything but 2xx (or not answered); with three independent tries it would be about ' +
        `${fixed(100 * fail ** 3, 1)} %, with two ${fixed(100 * fail ** 2, 1)} %. ` +
        'CPU is per 1000 requests answered 2xx. Latency counts from the first try to the answer, retries and backoff included. ' +
        (r.note ?? ''),
    )
    out.push('', rateTable(results, r))
  }
  if (results.scale !== undefined) {
    const s = results.scale
    out.push('', `## Scale with configuration: ${s.title}`, '')
    out.push(
      'Start-up is spawn to `/healthz/ready` (Node start-up, module loading, config load and compile, listeners bound). ' +
        'Load (YAML parse + validation) and compile (resources → Model) are timed in a child process that imports ' +
        '`src/config/load.ts` and `src/config/compile.ts`: cold is the first pass, warm the median of the others. ' +
        `p50/p99 at ${int(s.rate)} req/s to the last service, ${s.seconds} s per run, ${s.rounds} rounds. ` +
        'RSS at ready still holds the garbage of loading and compiling; RSS after runs is read once the fixed-rate ' +
        'runs are over, when V8 has collected it.',
    )
    out.push('', scaleTable(results))
  }
  if (results.concurrency !== undefined) {
    const c = results.concurrency
    out.push('', `## Multi-core: ${c.title}`, '')
    out.push(
      `autocannon, ${c.connections} keep-alive connections to \`${c.path}\`, ${c.seconds} s per run, ${c.rounds} rounds ` +
        'with the worker counts interleaved; each Outrigger runs with `--concurrency N` (N > 1: a supervisor and N worker ' +
        'processes sharing the listener port with SO_REUSEPORT, the kernel spreading connections over them). Scaling is ' +
        "the median req/s ÷ one worker's. CPU (user + system from /proc/<pid>/stat, per 1000 completed requests) and RSS " +
        '(VmRSS right after the run) are summed over the supervisor and every worker. Cores busy are CPU seconds ÷ wall ' +
        'seconds of the proxy, of the bench process (autocannon runs in it, on one thread), of the nginx upstream (one ' +
        'worker) and of the whole machine (/proc/stat, which also counts anything else running).',
    )
    out.push(
      '',
      `**On this ${m.cores}-core machine the load generator (autocannon) and the nginx upstream share the same cores ` +
        "as the proxy's workers, so the scaling measured here is bounded by the machine, not by the proxy**: once the " +
        `machine's busy cores near ${m.cores}, or autocannon nears one core, more workers cannot show more req/s. ` +
        'Read the CPU per 1000 requests for what the extra workers cost.',
    )
    out.push('', concurrencyTable(results))
  }
  if (results.mtls !== undefined) {
    out.push('', `## mTLS pair: ${results.mtls.title}`, '')
    out.push(...mtlsSection(results.mtls))
  }
  if (results.pending.length > 0) {
    out.push('', '## Not measured yet', '')
    for (const p of results.pending) out.push(`- ${p}`)
  }
  out.push('', '## Systems', '')
  out.push(
    table(
      ['System', 'What runs'],
      results.systems.map((s) => [s.label, s.detail]),
      true,
    ),
  )
  if (results.nodePeer !== undefined) {
    const np = results.nodePeer
    const tried = Object.entries(np.candidates)
      .map(([name, rps]) => `${name} ${int(rps)} req/s`)
      .join(', ')
    const how =
      np.roundsTogether === undefined
        ? 'each candidate loaded once with 1 KiB responses'
        : `the candidates loaded side by side with 1 KiB responses, median of ${np.roundsTogether} rounds`
    out.push('', `Node peer: ${np.chosen} (${how}: ${tried}).`)
  }
  if (results.failures.length > 0) {
    out.push('', '## Failures', '')
    for (const f of results.failures) out.push(`- ${f.where}: \`${f.error.split('\n')[0]}\``)
  }
  return `${out.join('\n')}\n`
}
