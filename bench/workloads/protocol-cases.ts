// The HTTP/2 and gRPC cases: h2load (h2c) and a @grpc/grpc-js unary load, direct and through Outrigger, nginx and haproxy, interleaved.

import { execFile } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { Failure, ThroughputCase } from '../report/results.ts'
import { type Child, startChild } from '../support/children.ts'
import type { Plan } from '../support/options.ts'
import { freePorts } from '../support/ports.ts'
import { ensureBinary } from '../support/tools.ts'
import { startHaproxyH2 } from '../systems/haproxy-h2.ts'
import { startNginxH2 } from '../systems/nginx-h2.ts'
import { startNodeFloorH2 } from '../systems/node-floor-h2.ts'
import { egressSidecar, startOutrigger } from '../systems/outrigger-process.ts'
import type { ProtocolPorts, ProtocolProxy } from '../systems/protocol-proxy.ts'
import type { SystemContext } from '../systems/system.ts'
import type { GrpcLoadResult } from './grpc-load-child.ts'
import { interleave, log } from './interleave.ts'
import type { ThroughputSample } from './throughput.ts'

const run = promisify(execFile)
const here = import.meta.dirname

/** A system of these cases: where the load generator connects, and the authority it sends. */
interface ProtocolTarget {
  readonly name: 'direct' | 'outrigger' | ProtocolProxy['name']
  readonly port: number
  readonly authority: string
}

/** Streams in flight per connection for h2load, and the connection count: 10 × 10 = 100 streams. */
const h2Connections = 10
const h2Streams = 10
/** gRPC calls outstanding at once, over the client's one channel. */
const grpcConcurrency = 50

/** Starts a child that prints its listening port as its first line. */
export async function startPrintingPort(
  name: string,
  script: string,
): Promise<{ child: Child; port: number }> {
  const child = startChild(name, process.execPath, [script])
  const deadline = performance.now() + 15_000
  while (performance.now() < deadline) {
    const line = child.output().split('\n')[0]
    if (/^\d+$/.test(line)) return { child, port: Number(line) }
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${name} printed no port: ${child.output().slice(-500)}`)
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
}

/** One h2load run for `seconds`; latencies come from its per-request log. */
async function runH2load(h2load: string, t: ProtocolTarget, seconds: number, logFile: string) {
  const { stdout } = await run(h2load, [
    '-c',
    String(h2Connections),
    '-m',
    String(h2Streams),
    '-D',
    `${Math.round(seconds * 1000)}ms`,
    `--log-file=${logFile}`,
    '-H',
    `:authority: ${t.authority}`,
    `http://127.0.0.1:${t.port}/`,
  ])
  const lines = (await readFile(logFile, 'utf8')).split('\n').filter(Boolean)
  await rm(logFile, { force: true })
  const ok: number[] = []
  let failed = 0
  for (const line of lines) {
    const [, status, durationUs] = line.split('\t')
    if (status === '200') ok.push(Number(durationUs) / 1000)
    else failed++
  }
  // A port that does not speak h2c (or a proxy that cannot reach the upstream) completes nothing.
  if (ok.length === 0) {
    const summary = stdout.split('\n').filter((l) => /^requests:|protocol/i.test(l))
    throw new Error(`h2load completed no request: ${summary.join(' | ')}`)
  }
  ok.sort((a, b) => a - b)
  const sample: ThroughputSample = {
    rps: ok.length / seconds,
    mibps: (ok.length * 1024) / seconds / (1024 * 1024),
    p50ms: percentile(ok, 0.5),
    p99ms: percentile(ok, 0.99),
    errors: 0,
    non2xx: failed,
  }
  return sample
}

async function runGrpcLoad(t: ProtocolTarget, seconds: number): Promise<ThroughputSample> {
  const { stdout } = await run(process.execPath, [
    join(here, 'grpc-load-child.ts'),
    String(t.port),
    t.authority,
    String(grpcConcurrency),
    String(seconds),
  ])
  const r = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as GrpcLoadResult
  if (!(r.calls > 0)) throw new Error(`no gRPC call succeeded (${r.errors} failed)`)
  return {
    rps: r.calls / r.seconds,
    mibps: (r.calls * 1024) / r.seconds / (1024 * 1024),
    p50ms: r.p50ms,
    p99ms: r.p99ms,
    errors: r.errors,
    non2xx: 0,
  }
}

/** A ServiceEntry `name` on port 80 with `protocol`, one STATIC endpoint 127.0.0.1:`port`. */
export function protocolServiceEntry(name: string, protocol: string, port: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}]
  resolution: STATIC
  ports: [{number: 80, name: ${protocol.toLowerCase()}, protocol: ${protocol}, targetPort: ${port}}]
  endpoints: [{address: 127.0.0.1}]
`
}

/** The peer proxies the plan asks for, in front of both upstreams; one that cannot start is a failure, not the end of the run. */
async function startPeers(
  plan: Plan,
  workDir: string,
  upstreams: ProtocolPorts,
  failures: Failure[],
): Promise<ProtocolProxy[]> {
  const peers: ProtocolProxy[] = []
  const starters = [
    { name: 'nginx', start: () => startNginxH2(ensureBinary('nginx', 'nginx'), workDir, upstreams) },
    { name: 'haproxy', start: () => startHaproxyH2(ensureBinary('haproxy', 'haproxy'), workDir, upstreams) },
    { name: 'node-floor', start: () => startNodeFloorH2(upstreams) },
  ] as const
  for (const { name, start } of starters) {
    if (!plan.systems.includes(name)) continue
    try {
      const peer = await start()
      peers.push(peer)
      log(`started ${name} for h2/grpc: ${peer.detail}`)
    } catch (err) {
      failures.push({ where: `start ${name} (h2/grpc)`, error: (err as Error).message })
      log(`start ${name} (h2/grpc) FAILED: ${(err as Error).message}`)
    }
  }
  return peers
}

/**
 * Warms one target with 1 s runs until two in a row agree on req/s within 10 % (at least `minSeconds`,
 * at most `maxSeconds`). The Outrigger process of these cases is started fresh here, and its first
 * seconds of load cost several times its steady CPU per request (V8 growing its heap page by page,
 * long scavenges that stall every stream, the JIT): a fixed short warm-up left the measured rounds
 * sometimes inside that phase and sometimes past it.
 */
export async function warmUp(
  label: string,
  run: (seconds: number) => Promise<ThroughputSample>,
  minSeconds: number,
  maxSeconds: number,
): Promise<void> {
  let spent = 0
  let previous = 0
  while (spent < maxSeconds) {
    const { rps } = await run(1)
    spent += 1
    if (spent >= minSeconds && previous > 0 && Math.abs(rps - previous) <= 0.1 * previous) break
    previous = rps
  }
  log(`${label} warmed up in ${spent} s`)
}

/** How each peer was set up, for a case's note. */
function peerNotes(peers: readonly ProtocolProxy[]): string {
  return peers.map((p) => ` ${p.detail}.`).join('')
}

export async function runProtocolCases(
  ctx: SystemContext,
  plan: Plan,
  h2load: string | undefined,
): Promise<{ results: ThroughputCase[]; failures: Failure[] }> {
  const results: ThroughputCase[] = []
  const failures: Failure[] = []
  const h2 = await startPrintingPort('h2c upstream', join(here, '..', 'systems', 'h2-upstream-server.ts'))
  const grpc = await startPrintingPort(
    'gRPC upstream',
    join(here, '..', 'systems', 'grpc-upstream-server.ts'),
  )
  const [egress] = await freePorts(1)
  const proxy = await startOutrigger({
    name: 'outrigger-protocols',
    workDir: ctx.workDir,
    resources: {
      'sidecar.yaml': egressSidecar(egress),
      'services.yaml': [
        protocolServiceEntry('h2', 'HTTP2', h2.port),
        protocolServiceEntry('grpc', 'GRPC', grpc.port),
      ].join('---\n'),
    },
  })
  const peers = await startPeers(plan, ctx.workDir, { h2: h2.port, grpc: grpc.port }, failures)
  const seconds = plan.throughputSeconds
  const warmupMaxSeconds = plan.short ? 8 : 15
  /** direct, Outrigger (routing by authority), then each peer on its port for `kind`. */
  const targetsFor = (kind: keyof ProtocolPorts, upstream: number): ProtocolTarget[] => [
    { name: 'direct', port: upstream, authority: `127.0.0.1:${upstream}` },
    { name: 'outrigger', port: egress, authority: `${kind}:80` },
    ...peers.map((p) => ({ name: p.name, port: p.ports[kind], authority: `127.0.0.1:${p.ports[kind]}` })),
  ]
  try {
    if (plan.cases.has('h2') && h2load !== undefined) {
      const targets = targetsFor('h2', h2.port)
      const logFile = join(ctx.workDir, 'h2load.log')
      for (const t of targets) {
        try {
          await warmUp(
            `h2 ${t.name}`,
            (s) => runH2load(h2load, t, s, logFile),
            plan.warmupSeconds + 0.5,
            warmupMaxSeconds,
          )
        } catch (err) {
          log(`h2 warm-up ${t.name} FAILED: ${(err as Error).message}`)
        }
      }
      const { results: systems, failed } = await interleave(
        'h2',
        targets,
        plan.rounds,
        (t) => runH2load(h2load, t, seconds, logFile),
        (_t, r) => `${Math.round(r.rps)} req/s p99 ${r.p99ms.toFixed(2)} ms`,
      )
      results.push({
        name: 'h2',
        title: 'HTTP/2 h2c, 1 KiB responses (h2load)',
        path: '/',
        connections: h2Connections,
        seconds,
        rounds: plan.rounds,
        description:
          `h2load, ${h2Connections} connections × ${h2Streams} concurrent streams, ${seconds} s per run, ${plan.rounds} rounds; ` +
          'the upstream is a node:http2 server answering 1 KiB (h2c only). Outrigger is an egress listener to a ServiceEntry with protocol HTTP2 ' +
          '(h2c both sides, one upstream session).' +
          peerNotes(peers) +
          (peers.some((p) => p.name === 'nginx')
            ? ' So nginx holds about one upstream connection per stream in flight where the others multiplex:' +
              ` the upstream serves about ${h2Connections * h2Streams} sessions for nginx and one for the others.`
            : '') +
          ' Latencies from h2load’s per-request log.',
        systems,
      })
      for (const [system, error] of Object.entries(failed)) failures.push({ where: `h2 ${system}`, error })
    }
    if (plan.cases.has('grpc')) {
      const targets = targetsFor('grpc', grpc.port)
      for (const t of targets) {
        try {
          await warmUp(`grpc ${t.name}`, (s) => runGrpcLoad(t, s), plan.warmupSeconds + 0.5, warmupMaxSeconds)
        } catch (err) {
          log(`grpc warm-up ${t.name} FAILED: ${(err as Error).message}`)
        }
      }
      const { results: systems, failed } = await interleave(
        'grpc',
        targets,
        plan.rounds,
        (t) => runGrpcLoad(t, seconds),
        (_t, r) => `${Math.round(r.rps)} calls/s p99 ${r.p99ms.toFixed(2)} ms`,
      )
      results.push({
        name: 'grpc',
        title: 'gRPC unary, 1 KiB each way (@grpc/grpc-js)',
        path: '/bench.Echo/Unary',
        connections: grpcConcurrency,
        seconds,
        rounds: plan.rounds,
        description:
          `A @grpc/grpc-js client in its own process keeps ${grpcConcurrency} unary calls outstanding on one channel for ${seconds} s per run, ` +
          `${plan.rounds} rounds; the upstream is a @grpc/grpc-js server; Outrigger is an egress listener to a ServiceEntry with protocol GRPC.` +
          peerNotes(peers) +
          ' req/s here is calls/s. The Node client and server cost more CPU per call than the proxy, so on 2 cores they bound every row.',
        systems,
      })
      for (const [system, error] of Object.entries(failed)) failures.push({ where: `grpc ${system}`, error })
    }
  } finally {
    for (const peer of peers) await peer.stop()
    await proxy.stop()
    await h2.child.stop()
    await grpc.child.stop()
  }
  if (plan.cases.has('h2') && h2load === undefined) failures.push({ where: 'h2', error: 'h2load not found' })
  log(`protocol cases done`)
  return { results, failures }
}
