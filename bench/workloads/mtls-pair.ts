// The mTLS pair case: client → Outrigger A → (Istio mTLS) → Outrigger B → upstream, against the same pair in plain text.
//
// `npm run bench -- [--short] --only mtls`. Measures, for each pair: req/s (autocannon, 50 keep-alive
// connections), latency at a fixed 1000 req/s (paced client) and the p50/p90/p99 the mTLS pair adds over
// the plain one, CPU µs per request (both sidecars); for B's mTLS port: handshakes per second (a new
// client connection per request, 16 at a time, the client presenting a mesh certificate) and RSS with
// 1,000 open mTLS connections.

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect, type TLSSocket } from 'node:tls'
import type { Failure, MtlsPairCase, MtlsPairRow } from '../report/results.ts'
import type { Plan } from '../support/options.ts'
import { freePorts } from '../support/ports.ts'
import { cpuSeconds, memory } from '../support/proc-stats.ts'
import {
  egressSidecar,
  ingressSidecar,
  type OutriggerProcess,
  repoRoot,
  startOutrigger,
} from '../systems/outrigger-process.ts'
import type { SystemContext } from '../systems/system.ts'
import { log } from './interleave.ts'
import { runPaced } from './paced-client.ts'
import { runThroughput } from './throughput.ts'

const PATH = '/1k'
const CONNECTIONS = 50
const HANDSHAKE_CONCURRENCY = 16
const OPEN_CONNECTIONS = 1_000
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/bench-client'
const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/bench-server'

interface Pair {
  readonly label: string
  readonly egress: number
  readonly ingress: number
  readonly client: OutriggerProcess
  readonly server: OutriggerProcess
}

function outrigger(...args: string[]): void {
  execFileSync(process.execPath, [join(repoRoot, 'dist', 'main.js'), ...args], { stdio: 'ignore' })
}

function tlsBootstrap(dir: string): string {
  return `tls:\n  certChain: ${join(dir, 'cert-chain.pem')}\n  privateKey: ${join(dir, 'key.pem')}\n  rootCert: ${join(dir, 'root-cert.pem')}\n`
}

const peerAuthentication = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
`

function service(port: number, target: number, mtls: boolean): string {
  const rule = mtls
    ? `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: upstream, namespace: default}
spec: {host: upstream.default.svc.cluster.local, trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}}
`
    : ''
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: upstream, namespace: default}
spec:
  hosts: [upstream.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: ${port}, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.0.1, ports: {http: ${target}}, serviceAccount: bench-server}]
${rule}`
}

async function startPair(workDir: string, upstreamPort: number, certs: string | undefined): Promise<Pair> {
  const [egress, ingress] = await freePorts(2)
  const mtls = certs !== undefined
  const label = mtls ? 'mtls' : 'plain'
  const server = await startOutrigger({
    name: `${label}-server`,
    workDir,
    resources: {
      'sidecar.yaml': ingressSidecar(ingress, upstreamPort),
      ...(mtls ? { 'peer-authentication.yaml': peerAuthentication } : {}),
    },
    ...(mtls ? { extraBootstrap: tlsBootstrap(join(certs, 'server')) } : {}),
  })
  const client = await startOutrigger({
    name: `${label}-client`,
    workDir,
    resources: { 'sidecar.yaml': egressSidecar(egress), 'services.yaml': service(egress, ingress, mtls) },
    ...(mtls ? { extraBootstrap: tlsBootstrap(join(certs, 'client')) } : {}),
  })
  return { label, egress, ingress, client, server }
}

const target = (pair: Pair) => ({ port: pair.egress, host: 'upstream' })
const pids = (pair: Pair) => [pair.client.child.pid, pair.server.child.pid]

async function fixedRate(pair: Pair, plan: Plan) {
  const before = cpuSeconds(pids(pair))
  const result = await runPaced(target(pair), {
    path: PATH,
    rate: plan.rate,
    seconds: plan.mtlsSeconds,
    connections: plan.rateConnections,
  })
  const cpu = cpuSeconds(pids(pair)) - before
  return { ...result, cpuUsPerRequest: (cpu * 1e6) / Math.max(1, result.completed) }
}

/** New TLS connections to B's port, one request each, `concurrency` at a time, for `seconds`. */
async function handshakes(
  port: number,
  certs: string,
  seconds: number,
  concurrency: number,
): Promise<{ perSecond: number; failed: number }> {
  const dir = join(certs, 'client')
  const options = {
    host: '127.0.0.1',
    port,
    key: readFileSync(join(dir, 'key.pem')),
    cert: readFileSync(join(dir, 'cert-chain.pem')),
    ca: readFileSync(join(dir, 'root-cert.pem')),
    ALPNProtocols: ['istio-http/1.1'],
    checkServerIdentity: () => undefined,
  }
  const end = performance.now() + seconds * 1000
  let done = 0
  let failed = 0
  let firstError: string | undefined
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      let answered = false
      // write, not end: a half-close before the answer lets the server close first (an HTTP client never does it).
      const socket = connect(options, () =>
        socket.write(`GET ${PATH} HTTP/1.1\r\nhost: upstream\r\nconnection: close\r\n\r\n`),
      )
      socket.on('data', () => {
        answered = true
      })
      socket.on('error', (err) => {
        firstError ??= err.message
      })
      socket.on('close', () => {
        if (answered) done++
        else failed++
        resolve()
      })
    })
  const worker = async (): Promise<void> => {
    while (performance.now() < end) await one()
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, worker))
  if (firstError !== undefined) log(`mtls: ${failed} handshakes failed, the first with: ${firstError}`)
  return { perSecond: done / ((performance.now() - started) / 1000), failed }
}

/** B's RSS (MiB) before and with `count` open mTLS connections (handshaken, idle). */
async function rssWithOpenConnections(
  pair: Pair,
  certs: string,
  count: number,
): Promise<MtlsPairCase['openConnections']> {
  const pid = [pair.server.child.pid]
  const idle = memory(pid).rssMiB
  const dir = join(certs, 'client')
  const options = {
    host: '127.0.0.1',
    port: pair.ingress,
    key: readFileSync(join(dir, 'key.pem')),
    cert: readFileSync(join(dir, 'cert-chain.pem')),
    ca: readFileSync(join(dir, 'root-cert.pem')),
    ALPNProtocols: ['istio-http/1.1'],
    checkServerIdentity: () => undefined,
  }
  const sockets: TLSSocket[] = []
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      Array.from(
        { length: Math.min(50, count - i) },
        () =>
          new Promise<void>((resolve, reject) => {
            const socket = connect(options, () => resolve())
            socket.on('error', reject)
            sockets.push(socket)
          }),
      ),
    )
  }
  await new Promise((r) => setTimeout(r, 1_000))
  const open = memory(pid).rssMiB
  for (const socket of sockets) socket.destroy()
  return { count, idleMiB: idle, openMiB: open, perConnectionKiB: ((open - idle) * 1024) / count }
}

async function measurePair(pair: Pair, plan: Plan): Promise<MtlsPairRow> {
  const throughput = await runThroughput(target(pair), {
    path: PATH,
    connections: CONNECTIONS,
    seconds: plan.mtlsSeconds,
  })
  return { throughput, rate: await fixedRate(pair, plan) }
}

/** Starts both pairs on the bench's upstream, measures them one after the other, and stops them. */
export async function runMtlsPairCase(
  ctx: SystemContext,
  plan: Plan,
): Promise<{ result?: MtlsPairCase; failures: Failure[] }> {
  const certs = join(ctx.workDir, 'mtls-certs')
  const pairs: Pair[] = []
  try {
    outrigger('ca', 'init', '--out', join(certs, 'ca'))
    outrigger('ca', 'issue', '--ca', join(certs, 'ca'), '--spiffe', CLIENT_ID, '--out', join(certs, 'client'))
    outrigger('ca', 'issue', '--ca', join(certs, 'ca'), '--spiffe', SERVER_ID, '--out', join(certs, 'server'))
    const plain = await startPair(ctx.workDir, ctx.upstreamPort, undefined)
    pairs.push(plain)
    const mtls = await startPair(ctx.workDir, ctx.upstreamPort, certs)
    pairs.push(mtls)
    log('mtls: started the plain and the mTLS pair')
    // Warm-up (JIT, pools, the mTLS pool's handshakes), unrecorded.
    for (const pair of pairs)
      await runThroughput(target(pair), { path: PATH, connections: CONNECTIONS, seconds: plan.warmupSeconds })
    const plainRow = await measurePair(plain, plan)
    const mtlsRow = await measurePair(mtls, plan)
    log(
      `mtls: req/s plain ${Math.round(plainRow.throughput.rps)}, mTLS ${Math.round(mtlsRow.throughput.rps)}`,
    )
    const handshake = await handshakes(mtls.ingress, certs, plan.mtlsSeconds, HANDSHAKE_CONCURRENCY)
    const openConnections = await rssWithOpenConnections(mtls, certs, OPEN_CONNECTIONS)
    const failures: Failure[] = []
    const errors = (row: MtlsPairRow) =>
      row.rate.errors + row.rate.non2xx + row.throughput.errors + row.throughput.non2xx
    for (const [label, row] of [
      ['plain', plainRow],
      ['mtls', mtlsRow],
    ] as const) {
      if (errors(row) > 0)
        failures.push({ where: `mtls case, ${label} pair`, error: `${errors(row)} failed requests` })
    }
    return {
      result: {
        title: `HTTP/1.1, ${PATH} through two sidecars, plain and Istio mTLS`,
        path: PATH,
        connections: CONNECTIONS,
        seconds: plan.mtlsSeconds,
        rate: plan.rate,
        rateConnections: plan.rateConnections,
        plain: plainRow,
        mtls: mtlsRow,
        added: {
          p50us: mtlsRow.rate.p50us - plainRow.rate.p50us,
          p90us: mtlsRow.rate.p90us - plainRow.rate.p90us,
          p99us: mtlsRow.rate.p99us - plainRow.rate.p99us,
        },
        handshakes: { ...handshake, concurrency: HANDSHAKE_CONCURRENCY, seconds: plan.mtlsSeconds },
        openConnections,
      },
      failures,
    }
  } catch (err) {
    log(`mtls case FAILED: ${(err as Error).message}`)
    return { failures: [{ where: 'mtls case', error: (err as Error).message }] }
  } finally {
    for (const pair of pairs) {
      await pair.client.stop()
      await pair.server.stop()
    }
  }
}
