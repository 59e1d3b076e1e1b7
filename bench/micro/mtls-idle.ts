// Micro-benchmark: whether idle keep-alive mTLS connections (PeerAuthentication STRICT) stay open past the request-headers timeout, and what they hold meanwhile.
//
// Run: npm run build && node bench/micro/mtls-idle.ts [--baseline <rev>] [--processes 3] [--connections 5] [--wait 70]
//
// Each fresh process (bootstrap defaults: requestHeadersTimeout 60 s, idleTimeout 1 h) gets `connections`
// Istio mTLS connections that each carry one request and then sit idle. Five seconds in, RSS and the
// admin /memory's active timers are read; after `wait` seconds, how many connections are still open and
// the connection managers' downstream_rq_header_timeout / downstream_cx_idle_timeout. With --baseline,
// Outrigger built from that revision runs too, its processes at the same time as this checkout's.

import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { removeAtExit, stopAll } from '../support/children.ts'
import { freePorts } from '../support/ports.ts'
import { memory } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import { gitCommit } from '../support/tools.ts'
import { buildRevision, shortCommit } from '../systems/outrigger-baseline.ts'
import { ingressSidecar, repoRoot, startOutrigger } from '../systems/outrigger-process.ts'
import { startScratchUpstream } from '../systems/upstream.ts'
import { mintMeshCertificates } from '../workloads/footprint-case.ts'
import { type IdleTarget, openIdleConnections } from '../workloads/idle-connections.ts'

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    processes: { type: 'string', default: '3' },
    connections: { type: 'string', default: '5' },
    wait: { type: 'string', default: '70' },
  },
})
const processes = Number(values.processes)
const connections = Number(values.connections)
const waitSeconds = Number(values.wait)

const peerAuthentication = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
`

interface Sample {
  readonly rssMiB: number
  /** Timers of the serving thread (admin /memory active_resources.Timeout) with the connections idle. */
  readonly timers: number
  readonly open: number
  readonly headerTimeouts: number
  readonly idleTimeouts: number
}

const { workDir, upstream } = await startScratchUpstream('mtls-idle')
const certs = mkdtempSync(join(tmpdir(), 'outrigger-mtls-idle-certs-'))
removeAtExit(certs)
const builds: [string, string | undefined][] = [[`this checkout (${gitCommit(repoRoot)})`, undefined]]
if (values.baseline !== undefined) {
  const commit = shortCommit(values.baseline)
  builds.push([`baseline ${commit}`, buildRevision(values.baseline, join(workDir, `baseline-${commit}`))])
}
mintMeshCertificates(certs, undefined)
const pem = (who: string, file: string): Buffer => readFileSync(join(certs, who, file))

function statSum(text: string, stat: string): number {
  let sum = 0
  for (const m of text.matchAll(new RegExp(`^http\\..*\\.${stat}: (\\d+)$`, 'gm'))) sum += Number(m[1])
  return sum
}

let started = 0
async function measure(mainScript: string | undefined): Promise<Sample> {
  const [port] = await freePorts(1)
  const server = join(certs, 'server')
  const proxy = await startOutrigger({
    name: `p${started++}`,
    workDir,
    mainScript,
    resources: {
      'sidecar.yaml': ingressSidecar(port, upstream.port),
      'peer-authentication.yaml': peerAuthentication,
    },
    extraBootstrap: `tls:\n  certChain: ${server}/cert-chain.pem\n  privateKey: ${server}/key.pem\n  rootCert: ${server}/root-cert.pem\n`,
  })
  const admin = async (path: string): Promise<Response> => fetch(`http://127.0.0.1:${proxy.adminPort}${path}`)
  const target: IdleTarget = {
    port,
    path: '/1k',
    tls: {
      key: pem('client', 'key.pem'),
      cert: pem('client', 'cert-chain.pem'),
      ca: pem('client', 'root-cert.pem'),
    },
  }
  try {
    const held = await openIdleConnections('mtls', target, connections, { batch: connections })
    if (held.opened !== connections) throw new Error(`${held.failed} connections failed: ${held.firstError}`)
    await sleep(5_000)
    const resources = (
      (await (await admin('/memory')).json()) as { active_resources: Record<string, number> }
    ).active_resources
    const rssMiB = memory([proxy.child.pid]).rssMiB
    await sleep(Math.max(0, waitSeconds - 5) * 1000)
    const stats = await (await admin('/stats')).text()
    const sample: Sample = {
      rssMiB,
      timers: resources.Timeout ?? 0,
      open: held.open(),
      headerTimeouts: statSum(stats, 'downstream_rq_header_timeout'),
      idleTimeouts: statSum(stats, 'downstream_cx_idle_timeout'),
    }
    held.close()
    return sample
  } finally {
    await proxy.stop()
  }
}

// Every process of every build at once: the wait dominates, and each build sees the same machine.
const runs = builds.flatMap(([name, script]) =>
  Array.from({ length: processes }, async () => {
    const s = await measure(script)
    process.stderr.write(`${name}: ${JSON.stringify(s)}\n`)
    return [name, s] as const
  }),
)
const results = await Promise.all(runs)
await stopAll()

const lines = [
  `Command: \`node bench/micro/mtls-idle.ts ${process.argv.slice(2).join(' ')}\`, node ${process.version}; ${processes} fresh processes per build, ${connections} idle mTLS connections each; medians, then each process's.`,
  '',
  `| Build | RSS MiB at 5 s | timers at 5 s | open after ${waitSeconds} s | downstream_rq_header_timeout | downstream_cx_idle_timeout |`,
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...builds.map(([name]) => {
    const xs = results.filter(([n]) => n === name).map(([, s]) => s)
    const col = (k: keyof Sample, digits = 0): string =>
      `${median(xs.map((x) => x[k])).toFixed(digits)} (${xs.map((x) => x[k].toFixed(digits)).join(' / ')})`
    return `| ${name} | ${col('rssMiB', 1)} | ${col('timers')} | ${col('open')} | ${col('headerTimeouts')} | ${col('idleTimeouts')} |`
  }),
]
process.stdout.write(`${lines.join('\n')}\n`)
process.exit(0)
