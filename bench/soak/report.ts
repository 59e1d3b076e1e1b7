// The soak's markdown report: the command, the machine, one row per minute, the totals, and the verdict with its rules.

import { cpus, loadavg, release, totalmem } from 'node:os'
import { gitCommit } from '../support/tools.ts'
import { repoRoot } from '../systems/outrigger-process.ts'
import type { ReloadSeen } from './generations.ts'
import type { Sample } from './sampler.ts'
import type { SessionCounts } from './session-drivers.ts'
import { type MinuteTraffic, PROTOCOLS, type ProtocolName } from './tally.ts'
import {
  describeGrowth,
  type GrowthResult,
  RELOAD_VISIBLE_WITHIN_MS,
  RSS_CEILING_MIB,
  type TrafficSummary,
} from './verdict.ts'

export interface MinuteRecord {
  readonly minute: number
  /** Median of the minute's samples. */
  readonly rssMiB: number
  /** Lowest of the minute's samples (the live set after a collection). */
  readonly heapMiB: number
  /** Median of the minute's samples. */
  readonly handles: number
  readonly traffic: Record<ProtocolName, MinuteTraffic>
  readonly events: readonly string[]
}

export interface SoakResult {
  readonly command: string
  readonly startedAt: Date
  readonly minutes: number
  readonly rates: Record<ProtocolName, number>
  readonly warmupSeconds: number
  readonly schedule: { reloadEveryMs: number; killEveryMs: number; firstKillMs: number; outageMs: number }
  readonly minuteRecords: readonly MinuteRecord[]
  readonly samples: readonly Sample[]
  readonly idle: Sample | undefined
  readonly quiescent: Sample | undefined
  readonly missedSamples: number
  readonly traffic: readonly (TrafficSummary & { dropped: number; p50us: number; p99us: number })[]
  readonly sessions: readonly (SessionCounts & { protocol: string })[]
  readonly growth: readonly GrowthResult[]
  readonly reloads: readonly ReloadSeen[]
  readonly kills: number
  readonly clusterStats: readonly { name: string; value: number }[]
  readonly clusterStatsError: string | undefined
  readonly failureLog: readonly { protocol: string; t: number; reason: string }[]
  /** GOAWAY frames the proxy sent to the HTTP/2 client on sessions it had not closed. */
  readonly goaways: readonly { t: number; code: number }[]
  readonly events: readonly { t: number; text: string }[]
  readonly failures: readonly string[]
}

const ms = (us: number): string => (us / 1000).toFixed(2)
const kinds = (s: Sample | undefined): string =>
  s === undefined
    ? 'n/a'
    : Object.entries(s.kinds)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, n]) => `${k} ${n}`)
        .join(', ')

export function renderReport(r: SoakResult): string {
  const cpu = cpus()
  const lines: string[] = []
  const verdict = r.failures.length === 0 ? '**PASS**' : '**FAIL**'
  lines.push(`# Soak: ${r.minutes} min, ${verdict}`, '')
  lines.push(
    `Made by \`${r.command}\` at commit \`${gitCommit(repoRoot)}\`, started ${r.startedAt.toISOString()}, ` +
      `node ${process.version}, on ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ` +
      `${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}; load average at the end ` +
      `${loadavg()
        .map((l) => l.toFixed(2))
        .join(
          ' ',
        )} (the machine is shared: the rate is fixed, so others' load shows as latency, not as fewer requests).`,
    '',
  )
  lines.push(
    `One Outrigger process (\`src/main.ts\`, one thread) with two egress listeners: HTTP (HTTP/1.1, h2c, gRPC and ` +
      `WebSocket, routed by Host) and TCP. Each protocol's service has two endpoints, separate processes (a, b). ` +
      `Rates: ${PROTOCOLS.map((p) => `${p} ${r.rates[p]}/s`).join(', ')} ` +
      `(WebSocket and TCP: that many sessions, one echoed message a second each, each session closing after 5–20 s and reopening; ` +
      `one HTTP/1.1 request in ten closes its connection; the HTTP/2 client opens a new session every 30 s). ` +
      `Every ${r.schedule.reloadEveryMs / 1000} s the VirtualServices file is rewritten with a new \`x-soak-generation\` response header; ` +
      `from ${r.schedule.firstKillMs / 1000} s on, every ${r.schedule.killEveryMs / 1000} s one endpoint (a and b in turn) is killed ` +
      `with SIGKILL and started again ${r.schedule.outageMs / 1000} s later. The VirtualServices retry ` +
      '(`attempts: 3, perTryTimeout: 2s, retryOn: connect-failure,refused-stream,reset,503,unavailable,cancelled`) and the ' +
      'DestinationRules eject (`consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 5s, maxEjectionPercent: 50`).',
    '',
  )
  lines.push('## Per minute', '')
  lines.push(
    `RSS is the median of the minute's samples (every 2 s, \`VmRSS\`), heap the lowest \`allocated\` of admin /memory ` +
      "(V8 heap used after the latest collection), handles the median of admin /memory's `active_resources` summed. " +
      'Each protocol: answered / sent (failed), p50 / p99 in ms.',
    '',
  )
  lines.push(`| min | RSS MiB | heap MiB | handles | ${PROTOCOLS.join(' | ')} | events |`)
  lines.push(`| ---: | ---: | ---: | ---: | ${PROTOCOLS.map(() => '---').join(' | ')} | --- |`)
  for (const m of r.minuteRecords) {
    const cells = PROTOCOLS.map((p) => {
      const t = m.traffic[p]
      return `${t.ok}/${t.sent}${t.failed > 0 ? ` (**${t.failed}**)` : ''} · ${ms(t.p50us)}/${ms(t.p99us)}`
    })
    lines.push(
      `| ${m.minute} | ${m.rssMiB.toFixed(1)} | ${m.heapMiB.toFixed(1)} | ${m.handles} | ${cells.join(' | ')} | ${m.events.join(', ')} |`,
    )
  }
  lines.push('', '## Totals', '')
  lines.push('| protocol | sent | answered | failed | dropped with a killed endpoint | p50 ms | p99 ms |')
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const t of r.traffic) {
    lines.push(
      `| ${t.protocol} | ${t.sent} | ${t.ok} | ${t.failed} | ${t.dropped} | ${ms(t.p50us)} | ${ms(t.p99us)} |`,
    )
  }
  lines.push(
    '',
    '| sessions | opened | closed cleanly | dropped with their endpoint | dropped otherwise | attempts failed in an outage | attempts failed otherwise | longest reconnect ms |',
  )
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const s of r.sessions) {
    lines.push(
      `| ${s.protocol} | ${s.opened} | ${s.closedCleanly} | ${s.droppedWithEndpoint} | ${s.droppedUnexpectedly} | ` +
        `${s.attemptsFailedDuringOutage} | ${s.attemptsFailedOtherwise} | ${s.longestReconnectMs.toFixed(0)} |`,
    )
  }
  const slowest = (p: ProtocolName): string => {
    const delays = r.reloads.map((x) => x.delayMs[p]).filter((d): d is number => d !== undefined)
    return delays.length === 0 ? 'n/a' : `${Math.max(...delays).toFixed(0)} ms`
  }
  lines.push(
    '',
    `Endpoint kills: ${r.kills}. Reloads: ${r.reloads.length}; the slowest to show in the traffic: ` +
      `http1 ${slowest('http1')}, http2 ${slowest('http2')}, grpc ${slowest('grpc')} (limit ${RELOAD_VISIBLE_WITHIN_MS / 1000} s).`,
    '',
  )
  if (r.clusterStats.length > 0) {
    lines.push(
      "The proxy's own counts at the end (admin `/stats`), what the retries and ejections hid from the clients:",
      '',
    )
    lines.push('```', ...r.clusterStats.map((s) => `${s.name}: ${s.value}`), '```', '')
  }
  if (r.clusterStatsError !== undefined)
    lines.push(`Admin /stats could not be read at the end: ${r.clusterStatsError}.`, '')
  lines.push(
    `Handles by kind before any client connected: ${kinds(r.idle)}. At the end, 3 s after every client closed (the proxy's upstream pools keep theirs): ${kinds(r.quiescent)}. ` +
      `Admin samples missed: ${r.missedSamples}.`,
    '',
  )
  if (r.failureLog.length > 0 || r.goaways.length > 0) {
    lines.push('## Failures, with what happened around them', '')
    const near = (t: number): string =>
      r.events
        .filter((e) => Math.abs(e.t - t) < 10)
        .map((e) => `${e.text} at ${e.t.toFixed(1)} s`)
        .join(', ') || 'no kill or reload within 10 s'
    for (const f of r.failureLog)
      lines.push(`- ${f.t.toFixed(1)} s, ${f.protocol}: ${f.reason} (${near(f.t)})`)
    for (const g of r.goaways)
      lines.push(`- ${g.t.toFixed(1)} s, http2: GOAWAY from the proxy, code ${g.code} (${near(g.t)})`)
    lines.push('')
  }
  lines.push('## Verdict', '')
  lines.push(
    `Warm-up: the first ${r.warmupSeconds} s are not judged for growth, and RSS and the heap only from V8's first full ` +
      'collection after it (until then V8 raises its old-generation limit with the load and RSS climbs with it); RSS growth ' +
      `only on a steady part of at least 5 minutes (V8 may go on sizing the heap that long), and every run fails when RSS ` +
      `passes ${RSS_CEILING_MIB} MiB after the warm-up. ` +
      'A resource fails when the least-squares slope over the second half of its steady part is above its limit AND its ' +
      'last point is above its first steady point by more than its noise floor. Points: RSS and handles, the median of each ' +
      '10-s window; the heap, its value right after each full collection (the live set). Traffic: no HTTP/1.1, HTTP/2 or ' +
      'gRPC request may fail, except one whose response had started when its endpoint was killed (no proxy can retry it; ' +
      'counted as dropped); no WebSocket or TCP message may be lost on a connection whose endpoint ran; such a connection ' +
      `may close only when its endpoint was killed and must be open again within 15 s; every reload must show in the ` +
      `HTTP/1.1, HTTP/2 and gRPC responses within ${RELOAD_VISIBLE_WITHIN_MS / 1000} s.`,
    '',
  )
  for (const g of r.growth) lines.push(`- ${g.failed ? '**fails**' : 'passes'}: ${describeGrowth(g)}`)
  lines.push('')
  if (r.failures.length === 0)
    lines.push('**PASS**: nothing grew without bound and nothing was lost that should not be.')
  else for (const f of r.failures) lines.push(`- **FAIL**: ${f}`)
  lines.push('')
  return lines.join('\n')
}
