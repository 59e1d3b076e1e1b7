// Micro-benchmark: what each idle downstream connection keeps on the V8 heap, by constructor and closure, from heap snapshots before and after N connections.
//
// Run: node bench/micro/connection-heap.ts [--connections 1000] [--protocols http1,http2,mtls] [--main src/main.ts]
//      [--no-floor] [--keep <dir>] [--top 25] [--settle <seconds>]
//
// For each protocol a fresh Outrigger (an ingress listener in front of the scratch nginx, as bench/footprint.ts;
// mTLS: PeerAuthentication STRICT, ALPN istio-http/1.1, certificates from `outrigger ca`) and, unless
// --no-floor, a bare node server of the same protocol (bench/systems/node-floor-idle-server.ts: what node
// itself keeps, with the proxy's node settings). One connection of the kind is opened and closed first; then a heap snapshot (CDP
// HeapProfiler.takeHeapSnapshot after two full collections), N connections that each carry one GET /1k and
// stay open, a second snapshot over the same inspector session. The table is the growth ÷ N by group:
// constructor name, `closure <name>` (anonymous ones with their line:column), or a kind in parentheses;
// bytes are self (shallow) sizes, not retained sizes (a dominator tree of a 100 MB snapshot costs more than
// this tool needs: the holders column says who keeps the new objects). "held by" counts the strong edges
// into the group's new objects (ids absent from the first snapshot) by holder group and edge name.
// --settle waits that long (default 1 s) with the connections idle before the second snapshot: what a
// connection lets go of only after a while (a timer that stops at its next tick) shows only with it.

import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { type Child, removeAtExit, stopAll } from '../support/children.ts'
import { HeapSnapshotSession } from '../support/heap-snapshot.ts'
import { diffSnapshots, HeapSnapshot } from '../support/heap-snapshot-diff.ts'
import { inspectorFlag, inspectorUrl } from '../support/inspector-gc.ts'
import { freePorts } from '../support/ports.ts'
import { memory } from '../support/proc-stats.ts'
import { gitCommit } from '../support/tools.ts'
import { startNodeFloor } from '../systems/node-floor-process.ts'
import { ingressSidecar, repoRoot, startOutrigger } from '../systems/outrigger-process.ts'
import { startScratchUpstream } from '../systems/upstream.ts'
import { mintMeshCertificates } from '../workloads/footprint-case.ts'
import { type IdleProtocol, type IdleTarget, openIdleConnections } from '../workloads/idle-connections.ts'

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    protocols: { type: 'string', default: 'http1,http2,mtls' },
    main: { type: 'string' },
    'no-floor': { type: 'boolean', default: false },
    keep: { type: 'string' },
    top: { type: 'string', default: '25' },
    settle: { type: 'string', default: '1' },
  },
})
const connections = Number(values.connections)
const protocols = (values.protocols ?? '').split(',').filter(Boolean) as IdleProtocol[]
const top = Number(values.top)
const mainScript = values.main === undefined ? undefined : resolve(values.main)

const peerAuthentication = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
`

/** A process under test: where it listens and its inspector. */
interface Subject {
  readonly port: number
  readonly child: Child
  stop(): Promise<void>
}

const log = (line: string): void => {
  process.stderr.write(`connection-heap: ${line}\n`)
}

const { workDir, upstream } = await startScratchUpstream('connection-heap')
const certs = mkdtempSync(join(tmpdir(), 'outrigger-connection-heap-certs-'))
removeAtExit(certs)
if (protocols.includes('mtls')) mintMeshCertificates(certs, mainScript)
const pem = (who: string, file: string): Buffer => readFileSync(join(certs, who, file))

let started = 0
async function startProxy(protocol: IdleProtocol): Promise<Subject> {
  const [port, inspectPort] = await freePorts(2)
  const server = join(certs, 'server')
  const proxy = await startOutrigger({
    name: `heap-${started++}`,
    workDir,
    mainScript,
    resources: {
      'sidecar.yaml': ingressSidecar(port, upstream.port),
      ...(protocol === 'mtls' ? { 'peer-authentication.yaml': peerAuthentication } : {}),
    },
    extraBootstrap:
      protocol === 'mtls'
        ? `tls:\n  certChain: ${server}/cert-chain.pem\n  privateKey: ${server}/key.pem\n  rootCert: ${server}/root-cert.pem\n`
        : '',
    nodeFlags: [inspectorFlag(inspectPort)],
  })
  return { port, child: proxy.child, stop: () => proxy.stop() }
}

interface Measured {
  readonly opened: number
  readonly stillOpen: number
  readonly rssPerKiB: number
  readonly table: string
  readonly totalBytesPer: number
}

async function measure(subject: Subject, protocol: IdleProtocol, label: string): Promise<Measured> {
  const target: IdleTarget = {
    port: subject.port,
    path: '/1k',
    tls:
      protocol === 'mtls'
        ? {
            key: pem('client', 'key.pem'),
            cert: pem('client', 'cert-chain.pem'),
            ca: pem('client', 'root-cert.pem'),
          }
        : undefined,
  }
  const session = await HeapSnapshotSession.open(inspectorUrl(subject.child))
  try {
    const warm = await openIdleConnections(protocol, target, 1, { batch: 1 })
    if (warm.opened !== 1) throw new Error(`${label}: the first connection failed: ${warm.firstError}`)
    warm.close()
    await sleep(1_000)
    const beforeText = await session.take()
    const rssBefore = memory([subject.child.pid]).rssMiB
    const held = await openIdleConnections(protocol, target, connections, {
      batch: protocol === 'mtls' ? 50 : 200,
    })
    if (held.failed > 0) log(`${label}: ${held.failed} failed, the first: ${held.firstError}`)
    await sleep(Number(values.settle) * 1000)
    const afterText = await session.take()
    const rssAfter = memory([subject.child.pid]).rssMiB
    const stillOpen = held.open()
    held.close()
    if (values.keep !== undefined) {
      mkdirSync(values.keep, { recursive: true })
      const stem = join(values.keep, label.replaceAll(/\W+/g, '-'))
      writeFileSync(`${stem}-before.heapsnapshot`, beforeText)
      writeFileSync(`${stem}-after.heapsnapshot`, afterText)
    }
    const diff = diffSnapshots(new HeapSnapshot(beforeText), new HeapSnapshot(afterText), stillOpen, top)
    const fmt = (n: number, digits: number): string => (Math.abs(n) < 0.005 ? '0' : n.toFixed(digits))
    const table = [
      `| ${label}: group | objects per connection | bytes per connection (self) | new ones held by (strong edges) |`,
      '| --- | ---: | ---: | --- |',
      ...diff.groups.map(
        (g) =>
          `| \`${g.group.replaceAll('|', '\\|')}\` | ${fmt(g.countPer, 2)} | ${fmt(g.bytesPer, 0)} | ${g.heldBy.join('; ').replaceAll('|', '\\|')} |`,
      ),
    ].join('\n')
    return {
      opened: held.opened,
      stillOpen,
      rssPerKiB: ((rssAfter - rssBefore) * 1024) / Math.max(1, stillOpen),
      table,
      totalBytesPer: diff.totalBytesPer,
    }
  } finally {
    session.close()
  }
}

const summary: string[] = [
  `| Protocol | Server | connections open | heap self size per connection (snapshot diff) | RSS per connection |`,
  '| --- | --- | ---: | ---: | ---: |',
]
const tables: string[] = []
try {
  for (const protocol of protocols) {
    const subjects: [string, () => Promise<Subject>][] = [
      [`Outrigger ${protocol}`, () => startProxy(protocol)],
    ]
    if (values['no-floor'] !== true)
      subjects.push([`node floor ${protocol}`, () => startNodeFloor(protocol, certs)])
    for (const [label, start] of subjects) {
      const subject = await start()
      try {
        const m = await measure(subject, protocol, label)
        log(`${label}: ${m.stillOpen} open, ${(m.totalBytesPer / 1024).toFixed(2)} KiB heap per connection`)
        summary.push(
          `| ${protocol} | ${label.startsWith('node') ? 'node floor' : 'Outrigger'} | ${m.stillOpen} of ${m.opened} | ${(m.totalBytesPer / 1024).toFixed(2)} KiB | ${m.rssPerKiB.toFixed(1)} KiB |`,
        )
        tables.push(m.table)
      } finally {
        await subject.stop()
      }
    }
  }
} finally {
  await stopAll()
}
process.stdout.write(
  `Command: \`node bench/micro/connection-heap.ts ${process.argv.slice(2).join(' ')}\` at ${gitCommit(repoRoot)}, node ${process.version}\n\n${summary.join('\n')}\n\n${tables.join('\n\n')}\n`,
)
process.exit(0)
