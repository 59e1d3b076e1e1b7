// `npm run soak -- --minutes N`: a fixed-rate load across HTTP/1.1, HTTP/2, gRPC, WebSocket and TCP with reloads and endpoint kills, judged for leaks and lost requests.

import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { resultsDir, stampFor } from './report/write.ts'
import { Endpoints } from './soak/endpoints.ts'
import { Generations } from './soak/generations.ts'
import { GrpcDriver, Http1Driver, Http2Driver } from './soak/http-drivers.ts'
import { type MinuteRecord, renderReport, type SoakResult } from './soak/report.ts'
import { RELOADED_FILE, reloadedResources, staticResources } from './soak/resources.ts'
import { Sampler } from './soak/sampler.ts'
import { SessionDriver, tcpOpener, webSocketOpener } from './soak/session-drivers.ts'
import { PROTOCOLS, type ProtocolName, Tally } from './soak/tally.ts'
import {
  GROWTH_RULES,
  judgeGrowth,
  judgeRssCeiling,
  judgeTraffic,
  RELOAD_VISIBLE_WITHIN_MS,
  type SessionSummary,
  type TrafficSummary,
} from './soak/verdict.ts'
import { installCleanup, removeAtExit } from './support/children.ts'
import { freePorts } from './support/ports.ts'
import { repoRoot, startOutrigger } from './systems/outrigger-process.ts'

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    /** Requests a second for HTTP/1.1; HTTP/2 and gRPC get 0.8 of it, WebSocket and TCP 0.2 (one message a second per session). */
    rate: { type: 'string', default: '100' },
    /** Seconds between endpoint kills; 0: none (to tell what the kills cost from what the load costs). */
    'kill-every': { type: 'string', default: '30' },
    'reload-every': { type: 'string', default: '20' },
    /** Also write the proxy's access log (JSON) to this file: to find out what a failing run's requests did. */
    'access-log': { type: 'string' },
    out: { type: 'string', default: resultsDir },
    json: { type: 'string' },
  },
})

const minutes = Number(args.minutes)
const baseRate = Number(args.rate)
if (!(minutes > 0) || !(baseRate > 0)) {
  process.stderr.write(
    'usage: npm run soak -- --minutes N [--rate R] [--kill-every S] [--reload-every S] [--out DIR] [--json FILE]\n',
  )
  process.exit(2)
}
const durationMs = minutes * 60_000
/** The first minute is warm-up (JIT, pools filling): not judged for growth. Half the run when it is shorter than 2 minutes. */
const warmupSeconds = Math.min(60, (durationMs / 1000) * 0.5)
const RELOAD_EVERY_MS = Number(args['reload-every']) * 1000
const KILL_EVERY_MS = Number(args['kill-every']) * 1000
const FIRST_KILL_MS = 20_000
const OUTAGE_MS = 8_000
const rates: Record<ProtocolName, number> = {
  http1: baseRate,
  http2: baseRate * 0.8,
  grpc: baseRate * 0.8,
  websocket: Math.max(1, Math.round(baseRate * 0.2)),
  tcp: Math.max(1, Math.round(baseRate * 0.2)),
}
const command = `npm run soak -- ${process.argv.slice(2).join(' ')}`.trim()

function log(line: string): void {
  process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

installCleanup()
const workDir = await mkdtemp(join(tmpdir(), 'outrigger-soak-'))
removeAtExit(workDir)
const startedAt = new Date()

const endpoints = await Endpoints.start(['a', 'b'])
const [httpPort, tcpPort] = await freePorts(2)
let generation = 0
const proxy = await startOutrigger({
  name: 'proxy',
  workDir,
  // src through Node's type stripping, as the tests run it: no build step, the same code.
  mainScript: join(repoRoot, 'src', 'main.ts'),
  extraBootstrap:
    args['access-log'] === undefined
      ? ''
      : `telemetry:\n  accessLog: {path: ${JSON.stringify(resolve(args['access-log']))}, encoding: JSON}\n`,
  resources: {
    ...staticResources({ http: httpPort, tcp: tcpPort }, endpoints.ports),
    [RELOADED_FILE]: reloadedResources(generation),
  },
})
log(`proxy pid ${proxy.child.pid} ready in ${proxy.startupMs.toFixed(0)} ms; endpoints a, b`)
let proxyExit: string | undefined
void proxy.child.exited.then((code) => {
  proxyExit = code
})

// Before any client connects: what the proxy holds idle (listeners, admin, timers).
const idle = await new Sampler(proxy.child.pid, proxy.adminPort, performance.now()).sample()
const tallies = Object.fromEntries(PROTOCOLS.map((p) => [p, new Tally(p)])) as Record<ProtocolName, Tally>
const generations = new Generations()
generations.written(0)
const http1 = new Http1Driver(httpPort, rates.http1, tallies.http1, generations, endpoints)
const http2 = new Http2Driver(httpPort, rates.http2, tallies.http2, generations, endpoints)
const grpc = new GrpcDriver(httpPort, rates.grpc, tallies.grpc, generations, endpoints)
const websocket = new SessionDriver(rates.websocket, webSocketOpener(httpPort), tallies.websocket, endpoints)
const tcp = new SessionDriver(rates.tcp, tcpOpener(tcpPort), tallies.tcp, endpoints)
await Promise.all([websocket.open(), tcp.open()])

const start = performance.now()
const sampler = new Sampler(proxy.child.pid, proxy.adminPort, start)
sampler.start()
for (const driver of [http1, http2, grpc, websocket, tcp]) driver.start()
log(`traffic started for ${minutes} min: ${PROTOCOLS.map((p) => `${p} ${rates[p]}/s`).join(', ')}`)

const events: { t: number; text: string }[] = []
const at = (): number => (performance.now() - start) / 1000
const reloadTimer = setInterval(() => {
  if (RELOAD_EVERY_MS === 0) return
  generation++
  generations.written(generation)
  void writeFile(join(proxy.dir, 'istio', RELOADED_FILE), reloadedResources(generation))
  events.push({ t: at(), text: `reload ${generation}` })
}, RELOAD_EVERY_MS || 60_000)

let kills = 0
let outage: Promise<void> = Promise.resolve()
const killOne = (): void => {
  const name = endpoints.ports[kills % endpoints.ports.length].name
  kills++
  outage = (async () => {
    await endpoints.kill(name)
    events.push({ t: at(), text: `kill ${name}` })
    await new Promise((r) => setTimeout(r, OUTAGE_MS))
    await endpoints.revive(name)
    events.push({ t: at(), text: `revive ${name}` })
  })()
}
let killTimer: NodeJS.Timeout | undefined
const firstKill = setTimeout(() => {
  if (KILL_EVERY_MS === 0) return
  killOne()
  killTimer = setInterval(killOne, KILL_EVERY_MS)
}, FIRST_KILL_MS)

const minuteRecords: MinuteRecord[] = []
let minuteStart = 0
const closeMinute = (): void => {
  const from = minuteStart
  const to = at()
  minuteStart = to
  const inMinute = sampler.samples.filter((s) => s.t >= from && s.t < to)
  const median = (xs: number[]): number =>
    [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
  const record: MinuteRecord = {
    minute: minuteRecords.length + 1,
    rssMiB: median(inMinute.map((s) => s.rssMiB)),
    heapMiB: Math.min(...inMinute.map((s) => s.heapMiB)),
    handles: median(inMinute.map((s) => s.handles)),
    traffic: Object.fromEntries(
      PROTOCOLS.map((p) => [p, tallies[p].takeMinute()]),
    ) as MinuteRecord['traffic'],
    events: events.filter((e) => e.t >= from && e.t < to).map((e) => e.text),
  }
  minuteRecords.push(record)
  const traffic = PROTOCOLS.map((p) => {
    const m = record.traffic[p]
    return `${p} ${m.ok}/${m.sent}${m.failed > 0 ? ` (${m.failed} failed)` : ''} p99 ${(m.p99us / 1000).toFixed(1)}ms`
  }).join(' · ')
  log(
    `minute ${record.minute}: RSS ${record.rssMiB.toFixed(1)} MiB, heap ${record.heapMiB.toFixed(1)} MiB, ` +
      `handles ${record.handles}; ${traffic}`,
  )
}
const minuteTimer = setInterval(closeMinute, 60_000)

await new Promise((r) => setTimeout(r, durationMs))
// The series the verdict judges ends with the traffic: the drain below is not the proxy's steady state.
sampler.stop()
clearInterval(minuteTimer)
clearInterval(reloadTimer)
clearTimeout(firstKill)
clearInterval(killTimer)
await Promise.all([http1.stop(), http2.stop(), grpc.stop()])
await Promise.all([websocket.stop(), tcp.stop()])
if (at() - minuteStart > 5) closeMinute()
await outage

let clusterStatsError: string | undefined
const clusterStats = await fetch(`http://127.0.0.1:${proxy.adminPort}/stats?format=json`, {
  signal: AbortSignal.timeout(10_000),
})
  .then((r) => r.json() as Promise<{ stats: { name: string; value: number }[] }>)
  .then((page) =>
    page.stats.filter(
      (s) =>
        s.name.includes('soak-') &&
        /\.(upstream_rq_retry|upstream_rq_retry_success|upstream_cx_connect_fail|upstream_rq_total|outlier_detection\.ejections_enforced_total)$/.test(
          s.name,
        ),
    ),
  )
  .catch((err: unknown) => {
    clusterStatsError = String(err)
    return []
  })
// Upstream keep-alive connections stay open (the proxy's pools); downstream ones should all be gone.
await new Promise((r) => setTimeout(r, 3_000))
const quiescent = await sampler.sample()
const alive = proxyExit === undefined
await proxy.stop()
await endpoints.stop()
await rm(workDir, { recursive: true, force: true })

const elapsedSeconds = durationMs / 1000
const traffic: TrafficSummary[] = PROTOCOLS.map((p) => ({
  protocol: p,
  sent: tallies[p].sent,
  ok: tallies[p].ok,
  failed: tallies[p].failed,
  reasons: tallies[p].reasons,
  planned: Math.floor(rates[p] * elapsedSeconds),
}))
const sessions: SessionSummary[] = [
  { protocol: 'websocket', ...websocket.counts },
  { protocol: 'tcp', ...tcp.counts },
]
const growth = GROWTH_RULES.map((rule) => judgeGrowth(sampler.samples, warmupSeconds, rule))
const reloads = generations.reloads(['http1', 'http2', 'grpc'])
const failures = judgeTraffic(traffic, sessions)
for (const g of growth) if (g.failed) failures.push(`${g.rule.label} grows without bound`)
const overCeiling = judgeRssCeiling(sampler.samples, warmupSeconds)
if (overCeiling !== undefined) failures.push(overCeiling)
for (const r of reloads) {
  for (const p of ['http1', 'http2', 'grpc'] as const) {
    const delay = r.delayMs[p]
    if (delay === undefined || delay > RELOAD_VISIBLE_WITHIN_MS) {
      failures.push(`reload ${r.generation}: ${p} did not see it within ${RELOAD_VISIBLE_WITHIN_MS / 1000} s`)
    }
  }
}
if (!alive) failures.push(`the proxy exited during the run (${proxyExit})`)
if (minutes >= 1 && KILL_EVERY_MS > 0 && kills === 0) failures.push('no endpoint was killed')

const result: SoakResult = {
  command,
  startedAt,
  minutes,
  rates,
  warmupSeconds,
  schedule: {
    reloadEveryMs: RELOAD_EVERY_MS,
    killEveryMs: KILL_EVERY_MS,
    firstKillMs: FIRST_KILL_MS,
    outageMs: OUTAGE_MS,
  },
  minuteRecords,
  samples: sampler.samples,
  idle,
  quiescent,
  missedSamples: sampler.missed,
  traffic: PROTOCOLS.map((p) => ({
    ...traffic.find((t) => t.protocol === p)!,
    dropped: tallies[p].dropped,
    ...tallies[p].overall(),
  })),
  sessions: [
    { protocol: 'websocket', ...websocket.counts },
    { protocol: 'tcp', ...tcp.counts },
  ],
  growth,
  reloads,
  kills,
  clusterStats,
  clusterStatsError,
  failureLog: PROTOCOLS.flatMap((p) =>
    tallies[p].firstFailures.map((f) => ({ protocol: p, t: (f.at - start) / 1000, reason: f.reason })),
  ).sort((a, b) => a.t - b.t),
  goaways: http2.goaways.map((g) => ({ t: (g.at - start) / 1000, code: g.code })),
  events,
  failures,
}
const stamp = `soak-${stampFor(startedAt, false)}`
const report = renderReport(result)
const reportFile = join(args.out, `${stamp}.md`)
await writeFile(reportFile, report)
if (args.json !== undefined) {
  await writeFile(
    args.json,
    JSON.stringify(
      { ...result, traffic: result.traffic.map((t) => ({ ...t, reasons: Object.fromEntries(t.reasons) })) },
      null,
      2,
    ),
  )
}
log(`report: ${reportFile}`)
if (failures.length === 0) {
  log('PASS')
  process.exit(0)
}
for (const f of failures) process.stdout.write(`soak: FAIL: ${f}\n`)
process.exit(1)
