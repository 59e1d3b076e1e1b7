// The footprint case: Outrigger's RSS idle, at 1000 req/s, after a burst, per idle connection (HTTP/1.1, HTTP/2, mTLS) beside node's own floor, and its image size.

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, relative } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parse } from 'yaml'
import {
  type FootprintConnections,
  type FootprintImage,
  type FootprintMeta,
  type FootprintResults,
  type FootprintSequence,
  footprintRows,
  type IdleReading,
} from '../report/footprint-results.ts'
import { get } from '../support/http.ts'
import {
  collectGarbage,
  evaluateAwaited,
  heapUsedBytes,
  inspectorFlag,
  inspectorUrl,
} from '../support/inspector-gc.ts'
import { freePorts } from '../support/ports.ts'
import { memory } from '../support/proc-stats.ts'
import { gitCommit, which } from '../support/tools.ts'
import { startNodeFloor } from '../systems/node-floor-process.ts'
import {
  ingressSidecar,
  type OutriggerProcess,
  proxyNodeFlags,
  repoRoot,
  startOutrigger,
} from '../systems/outrigger-process.ts'
import { type IdleProtocol, type IdleTarget, openIdleConnections } from './idle-connections.ts'
import { log } from './interleave.ts'
import { runPaced } from './paced-client.ts'
import { runThroughput } from './throughput.ts'

export interface FootprintPlan {
  /** Fresh processes per measurement; the report has their median. */
  readonly processes: number
  /** Idle keep-alive connections opened per protocol. */
  readonly connections: number
  /** No batch of connections starts after this many seconds (fewer are opened on a slow machine). */
  readonly openWithinSeconds: number
  readonly protocols: readonly IdleProtocol[]
  /** Only the per-connection processes: no idle, rate or burst sequence. */
  readonly connectionsOnly?: boolean
  /** Seconds from the one request after start to the idle reading. */
  readonly idleSeconds: number
  readonly rate: number
  readonly rateSeconds: number
  /** Seconds of saturation (two thirds 1 KiB responses, then 64 KiB), 50 connections. */
  readonly burstSeconds: number
  /** Seconds after the burst at which RSS is read again; the last is judged against the target. */
  readonly quietChecks: readonly number[]
  /** The live view: the bootstrap's default (`sidecar`, off) or config/default.yaml's (`default-config`, on). */
  readonly live: 'sidecar' | 'default-config'
  /** The entry script (default dist/main.js, as built). */
  readonly mainScript?: string
  /** Build the image (scripts/image/build.sh) before reading its size. */
  readonly buildImage: boolean
}

export interface FootprintContext {
  readonly workDir: string
  readonly upstreamPort: number
}

const PATH = '/1k'
const CLIENT_ID = 'spiffe://cluster.local/ns/default/sa/footprint-client'
const SERVER_ID = 'spiffe://cluster.local/ns/default/sa/footprint-server'
const peerAuthentication = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec: {mtls: {mode: STRICT}}
`

/**
 * The `live` block every bootstrap gets: `sidecar` leaves the bootstrap's default (off: what an injected
 * sidecar runs unless its bootstrap asks), `default-config` copies config/default.yaml's (what `npm start`
 * and the image's default command run: on).
 */
export function liveBlock(live: FootprintPlan['live']): { bootstrap: string; enabled: boolean } {
  if (live === 'sidecar') return { bootstrap: '', enabled: false }
  const config = parse(readFileSync(join(repoRoot, 'config', 'default.yaml'), 'utf8')) as {
    live?: { enabled?: boolean }
  }
  if (config.live === undefined) return { bootstrap: '', enabled: false }
  return { bootstrap: `live: ${JSON.stringify(config.live)}\n`, enabled: config.live.enabled === true }
}

const rss = (proxy: OutriggerProcess): number => memory([proxy.child.pid]).rssMiB

let started = 0

/**
 * A fresh proxy with an ingress listener on the port it returns. Started again (new ports) when it exits
 * before ready: on a machine shared with other runs, a free port handed out can be taken before it is bound.
 */
async function startProxy(
  ctx: FootprintContext,
  plan: FootprintPlan,
  extra: { resources?: Record<string, string>; bootstrap?: string; inspect?: boolean } = {},
): Promise<{ proxy: OutriggerProcess; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const [port, inspectPort] = await freePorts(2)
    try {
      const proxy = await startOutrigger({
        name: `footprint-${started++}`,
        workDir: ctx.workDir,
        mainScript: plan.mainScript,
        resources: { 'sidecar.yaml': ingressSidecar(port, ctx.upstreamPort), ...extra.resources },
        extraBootstrap: `${liveBlock(plan.live).bootstrap}${extra.bootstrap ?? ''}`,
        nodeFlags: extra.inspect === true ? [inspectorFlag(inspectPort)] : [],
      })
      return { proxy, port }
    } catch (err) {
      if (attempt === 3 || !/EADDRINUSE/.test((err as Error).message)) throw err
      log(`footprint: a port was taken before the proxy bound it; starting it again`)
    }
  }
}

/**
 * One fresh process: idle after one request, then `rate` req/s, then a saturation burst and quiet. `duringQuiet`
 * runs while it sits quiet (the per-connection processes: what they do to the machine's CPU does not change
 * this idle process's RSS, and the run stays within its time).
 */
export async function measureSequence(
  ctx: FootprintContext,
  plan: FootprintPlan,
  duringQuiet: () => Promise<void>,
): Promise<FootprintSequence> {
  const { proxy, port } = await startProxy(ctx, plan)
  try {
    const first = await get(port, PATH)
    if (first.status !== 200) throw new Error(`the first request answered ${first.status}`)
    // A pod's Prometheus scrapes the stats port every 15 s: an idle sidecar has served one (bench/micro/idle-rss.ts).
    const scrape = await get(proxy.statsPort, '/stats/prometheus', undefined, 10_000)
    if (scrape.status !== 200) throw new Error(`/stats/prometheus answered ${scrape.status}`)
    await sleep(plan.idleSeconds * 1000)
    const idleMiB = rss(proxy)

    let rateMaxMiB = 0
    const sampler = setInterval(() => {
      rateMaxMiB = Math.max(rateMaxMiB, rss(proxy))
    }, 1000)
    const paced = await runPaced(
      { port },
      { path: PATH, rate: plan.rate, seconds: plan.rateSeconds, connections: 16 },
    )
    clearInterval(sampler)
    const rateEndMiB = rss(proxy)
    rateMaxMiB = Math.max(rateMaxMiB, rateEndMiB)

    const small = await runThroughput(
      { port },
      { path: PATH, connections: 50, seconds: (plan.burstSeconds * 2) / 3 },
    )
    const large = await runThroughput(
      { port },
      { path: '/64k', connections: 50, seconds: plan.burstSeconds / 3 },
    )
    const burstEnded = performance.now()
    const burstEndMiB = rss(proxy)
    const quietMiB: number[] = []
    const quietAtSeconds: number[] = []
    const readings = (async () => {
      for (const at of plan.quietChecks) {
        await sleep(Math.max(0, burstEnded + at * 1000 - performance.now()))
        quietMiB.push(rss(proxy))
        quietAtSeconds.push((performance.now() - burstEnded) / 1000)
      }
    })()
    await duringQuiet()
    await readings
    return {
      idleMiB,
      rateEndMiB,
      rateMaxMiB,
      rateCompleted: paced.completed,
      rateFailed: paced.errors + paced.non2xx,
      rateP99us: paced.p99us,
      burstRps: small.rps,
      burstFailed: small.errors + small.non2xx + large.errors + large.non2xx,
      burstEndMiB,
      quietMiB,
      quietAtSeconds,
    }
  } finally {
    await proxy.stop()
  }
}

/** Mesh certificates for the mTLS case, minted with `outrigger ca` (src/ca/) into `dir`. */
export function mintMeshCertificates(dir: string, mainScript: string | undefined): void {
  const main = mainScript ?? join(repoRoot, 'dist', 'main.js')
  const outrigger = (...args: string[]): void => {
    execFileSync(process.execPath, [main, ...args], { stdio: 'ignore' })
  }
  outrigger('ca', 'init', '--out', join(dir, 'ca'))
  outrigger('ca', 'issue', '--ca', join(dir, 'ca'), '--spiffe', CLIENT_ID, '--out', join(dir, 'client'))
  outrigger('ca', 'issue', '--ca', join(dir, 'ca'), '--spiffe', SERVER_ID, '--out', join(dir, 'server'))
}

/** `pid`'s soft limit on open files, from /proc/<pid>/limits. */
function fileLimit(pid: number): number {
  const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))
  return line === null || line[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(line[1])
}

/**
 * Lets `pid` hold `files` descriptors when its limit is lower (node raised its soft limit to the hard one at
 * start). Raising the hard limit needs CAP_SYS_RESOURCE; without it the limit stays, and the connections past
 * it fail and are counted.
 */
function raiseFileLimit(pid: number, files: number): void {
  if (fileLimit(pid) >= files || which('prlimit') === undefined) return
  try {
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${files}:${files}`], { stdio: 'ignore' })
  } catch {
    log(`footprint: cannot raise pid ${pid}'s open-file limit to ${files} (${fileLimit(pid)})`)
  }
}

interface Reading {
  readonly rssMiB: number
  readonly heapMiB: number
  readonly handles: number
  /** Upstream connections the proxy's pools hold (every cluster's upstream_cx_active). */
  readonly upstreamConnections: number
}

/** Two full collections through the inspector, a moment for the allocator, then RSS, live heap and open handles. */
async function settledReading(proxy: OutriggerProcess, url: string): Promise<Reading> {
  await collectGarbage(url)
  await sleep(500)
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/memory`)
  const body = (await res.json()) as { allocated: string; active_resources: Record<string, number> }
  const stats = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/stats`)).text()
  let upstreamConnections = 0
  for (const m of stats.matchAll(/^cluster\..*\.upstream_cx_active: (\d+)$/gm))
    upstreamConnections += Number(m[1])
  return {
    upstreamConnections,
    rssMiB: rss(proxy),
    heapMiB: Number(body.allocated) / 2 ** 20,
    handles: Object.values(body.active_resources).reduce((a, b) => a + b, 0),
  }
}

/** The client side of `protocol`'s connections to `port`: mTLS presents the mesh client certificate. */
function idleTarget(protocol: IdleProtocol, port: number, certs: string): IdleTarget {
  const client = (file: string): Buffer => readFileSync(join(certs, 'client', file))
  return {
    port,
    path: PATH,
    tls:
      protocol === 'mtls'
        ? { key: client('key.pem'), cert: client('cert-chain.pem'), ca: client('root-cert.pem') }
        : undefined,
  }
}

/**
 * The per-connection measurement of one fresh process listening on `target`: one connection of the kind
 * first, closed again (the code paths and pools it needs are loaded before "before"), "before", up to
 * `count` connections that each carry one GET and stay open, "after". `read` takes a settled reading.
 */
async function holdIdle<R extends { readonly rssMiB: number; readonly heapMiB: number }>(
  plan: FootprintPlan,
  protocol: IdleProtocol,
  target: IdleTarget,
  count: number,
  read: () => Promise<R>,
): Promise<{ before: R; after: R; reading: IdleReading }> {
  const warm = await openIdleConnections(protocol, target, 1, { batch: 1 })
  if (warm.opened !== 1) throw new Error(`${protocol}: the first connection failed: ${warm.firstError}`)
  warm.close()
  await sleep(1_000)
  const before = await read()
  const opening = performance.now()
  // TLS handshakes hold the event loop: fewer at a time, or the overload manager sheds most of a batch.
  // Every connection must still be open at "after" (the report divides by those still open).
  const connections = await openIdleConnections(protocol, target, count, {
    batch: protocol === 'mtls' ? 50 : 200,
    stopAfterMs: plan.openWithinSeconds * 1000,
  })
  const openSeconds = (performance.now() - opening) / 1000
  await sleep(1_000)
  const after = await read()
  const stillOpen = connections.open()
  connections.close()
  if (connections.failed > 0)
    log(`footprint ${protocol}: ${connections.failed} failed, the first: ${connections.firstError}`)
  return {
    before,
    after,
    reading: {
      opened: connections.opened,
      failed: connections.failed,
      retried: connections.retried,
      stillOpen,
      openSeconds,
      rssBeforeMiB: before.rssMiB,
      rssAfterMiB: after.rssMiB,
      heapBeforeMiB: before.heapMiB,
      heapAfterMiB: after.heapMiB,
      perConnectionKiB: ((after.rssMiB - before.rssMiB) * 1024) / Math.max(1, stillOpen),
      heapPerConnectionKiB: ((after.heapMiB - before.heapMiB) * 1024) / Math.max(1, stillOpen),
    },
  }
}

/** One fresh process: what `plan.connections` idle connections of `protocol`, each after one request, add. */
export async function measureConnections(
  ctx: FootprintContext,
  plan: FootprintPlan,
  protocol: IdleProtocol,
  certs: string,
): Promise<FootprintConnections> {
  const mtls = protocol === 'mtls'
  const tlsDir = (who: string): string => join(certs, who)
  const { proxy, port } = await startProxy(ctx, plan, {
    resources: mtls ? { 'peer-authentication.yaml': peerAuthentication } : {},
    bootstrap: mtls
      ? `tls:\n  certChain: ${tlsDir('server')}/cert-chain.pem\n  privateKey: ${tlsDir('server')}/key.pem\n  rootCert: ${tlsDir('server')}/root-cert.pem\n`
      : '',
    inspect: true,
  })
  raiseFileLimit(proxy.child.pid, plan.connections + 4_096)
  raiseFileLimit(process.pid, plan.connections + 4_096)
  try {
    const url = inspectorUrl(proxy.child)
    const { before, after, reading } = await holdIdle(
      plan,
      protocol,
      idleTarget(protocol, port, certs),
      plan.connections,
      () => settledReading(proxy, url),
    )
    return {
      protocol,
      requested: plan.connections,
      ...reading,
      handlesBefore: before.handles,
      handlesAfter: after.handles,
      upstreamBefore: before.upstreamConnections,
      upstreamAfter: after.upstreamConnections,
    }
  } finally {
    await proxy.stop()
  }
}

/**
 * Node's own floor beside one Outrigger process: a fresh bare node server of `protocol`
 * (bench/systems/node-floor-process.ts) given `count` connections (as many as the proxy held), opened and
 * read the same way (its live heap through the inspector, as it has no admin port). Before each of its
 * readings it also makes the memory-reducing collection and malloc_trim the proxy's idle trim makes when
 * idle after growth (node-floor-idle-server.ts `reduceMemory`): the floor is the least node keeps, and
 * what the proxy's trim had not yet given back at its reading counts as the proxy's.
 */
export async function measureNodeFloor(
  plan: FootprintPlan,
  protocol: IdleProtocol,
  certs: string,
  count: number,
): Promise<IdleReading> {
  const floor = await startNodeFloor(protocol, certs)
  raiseFileLimit(floor.child.pid, count + 4_096)
  try {
    const url = inspectorUrl(floor.child)
    const read = async (): Promise<{ rssMiB: number; heapMiB: number }> => {
      await collectGarbage(url)
      await evaluateAwaited(url, 'globalThis.reduceMemory()')
      await sleep(500)
      const rssMiB = memory([floor.child.pid]).rssMiB
      return { rssMiB, heapMiB: (await heapUsedBytes(url)) / 2 ** 20 }
    }
    const { reading } = await holdIdle(plan, protocol, idleTarget(protocol, floor.port, certs), count, read)
    return reading
  } finally {
    await floor.stop()
  }
}

/** The image's tag: the one `outrigger inject` defaults to (src/cli/inject.ts), `localhost/outrigger:<version>`. */
export function imageTag(): string {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }
  return `localhost/outrigger:${version}`
}

/** `podman image inspect`'s size of the local image (built first with `build`), or why there is none. */
export function imageSize(build: boolean): FootprintImage {
  const tag = imageTag()
  if (which('podman') === undefined) return { tag, status: 'not built (no podman on this machine)' }
  if (build) {
    log(`footprint: building ${tag} (scripts/image/build.sh)`)
    execFileSync('bash', [join(repoRoot, 'scripts', 'image', 'build.sh'), tag], { stdio: 'inherit' })
  }
  try {
    const [size, created] = execFileSync(
      'podman',
      ['image', 'inspect', '--format', '{{.Size}}|{{.Created}}', tag],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    )
      .trim()
      .split('|')
    return { tag, status: 'built', sizeBytes: Number(size), created }
  } catch {
    return { tag, status: 'not built (`--image` builds it)' }
  }
}

/** Every measurement in fresh processes, `plan.processes` rounds (a sequence, then each protocol), and the image. */
export async function runFootprint(
  ctx: FootprintContext,
  plan: FootprintPlan,
  command: string,
): Promise<FootprintResults> {
  const date = new Date()
  const started = performance.now()
  const loadAtStart = loadavg()[0]
  const sequences: FootprintSequence[] = []
  const connections: FootprintConnections[] = []
  const failures: string[] = []
  const certs = join(ctx.workDir, 'footprint-certs')
  const attempt = async <T>(what: string, measure: () => Promise<T>): Promise<T | undefined> => {
    try {
      const value = await measure()
      log(`footprint ${what}: ${JSON.stringify(value)}`)
      return value
    } catch (err) {
      failures.push(`${what}: ${(err as Error).message}`)
      log(`footprint ${what} FAILED: ${(err as Error).message}`)
      return undefined
    }
  }
  if (plan.protocols.includes('mtls')) mintMeshCertificates(certs, plan.mainScript)
  for (let i = 1; i <= plan.processes; i++) {
    let connectionsDone = false
    // One protocol at a time: this process holds the client side of every connection, and where its file
    // limit cannot be raised (no CAP_SYS_RESOURCE) 20,000 is a common hard limit. Node's floor of each
    // protocol right after the proxy's, with as many connections as the proxy held.
    const connectionRound = async (): Promise<void> => {
      connectionsDone = true
      for (const protocol of plan.protocols) {
        const outrigger = await attempt(`${protocol} #${i}`, () =>
          measureConnections(ctx, plan, protocol, certs),
        )
        if (outrigger === undefined) continue
        const floor = await attempt(`${protocol} node floor #${i}`, () =>
          measureNodeFloor(plan, protocol, certs, outrigger.stillOpen),
        )
        connections.push(floor === undefined ? outrigger : { ...outrigger, floor })
      }
    }
    if (plan.connectionsOnly !== true) {
      const sequence = await attempt(`sequence #${i}`, () => measureSequence(ctx, plan, connectionRound))
      if (sequence !== undefined) sequences.push(sequence)
    }
    if (!connectionsDone) await connectionRound()
  }
  for (const c of connections) {
    if (c.failed > 0 || c.stillOpen < c.opened)
      failures.push(
        `${c.protocol}: ${c.failed} connections failed, ${c.stillOpen} of ${c.opened} still open at the reading`,
      )
    if (c.floor !== undefined && (c.floor.failed > 0 || c.floor.stillOpen < c.floor.opened))
      failures.push(
        `${c.protocol} node floor: ${c.floor.failed} connections failed, ${c.floor.stillOpen} of ${c.floor.opened} still open at the reading`,
      )
  }
  for (const [i, s] of sequences.entries()) {
    if (s.rateFailed > 0 || s.burstFailed > 0)
      failures.push(
        `sequence #${i + 1}: ${s.rateFailed} requests failed at the fixed rate, ${s.burstFailed} in the burst`,
      )
  }
  const image = imageSize(plan.buildImage)
  const live = liveBlock(plan.live)
  const meta: FootprintMeta = {
    date: `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    command,
    gitCommit: gitCommit(repoRoot),
    node: process.version,
    nodeFlags: proxyNodeFlags,
    entry: relative(repoRoot, plan.mainScript ?? join(repoRoot, 'dist', 'main.js')),
    live:
      plan.live === 'sidecar'
        ? "off (the bootstrap's default, as an injected sidecar runs)"
        : live.enabled
          ? 'on (config/default.yaml: live.enabled true)'
          : 'off (as config/default.yaml)',
    processes: plan.processes,
    connections: plan.connections,
    rate: plan.rate,
    rateSeconds: plan.rateSeconds,
    burstSeconds: plan.burstSeconds,
    idleSeconds: plan.idleSeconds,
    quietChecks: plan.quietChecks,
    durationSeconds: (performance.now() - started) / 1000,
    loadAverage: { start: loadAtStart, end: loadavg()[0] },
  }
  return {
    meta,
    sequences,
    connections,
    image,
    rows: footprintRows(meta, sequences, connections, image),
    failures,
  }
}
