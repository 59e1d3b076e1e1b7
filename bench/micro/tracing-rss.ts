// Micro-benchmark: the RSS that tracing at 1 % adds to a sidecar with metrics on, at a fixed rate, over fresh processes.
//
// Run: npm run build && node bench/micro/tracing-rss.ts [--processes 5] [--rate 1000] [--rate-seconds 30]
//        [--with '--flag NAME=value …']
//
// bench/telemetry.ts reads RSS once, after every fixed-rate round of one long-lived process per variant; this
// reads it over `--processes` fresh pairs (metrics alone, metrics + tracing at 1 % to an OTLP/HTTP sink in
// this process), each started, sent one request, then loaded at `--rate` req/s (1 KiB, 16 connections) for
// `--rate-seconds`, read at the end and after 10 s of quiet (the idle trim), and stopped. The pairs alternate
// which variant starts first. The target: metrics and a 1 % sample together cost at most 15 MiB of RSS
// over metrics off; metrics alone cost bench/telemetry.ts's "metrics" row. `--with` adds node flags (`--…`
// words) or environment variables (`NAME=value` words) to both variants.

import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Worker } from 'node:worker_threads'
import { stopAll } from '../support/children.ts'
import { get } from '../support/http.ts'
import { parseNodeWords } from '../support/node-variant.ts'
import { freePorts } from '../support/ports.ts'
import { memory } from '../support/proc-stats.ts'
import { median } from '../support/stats.ts'
import { gitCommit } from '../support/tools.ts'
import { ingressSidecar, repoRoot, startOutrigger } from '../systems/outrigger-process.ts'
import { startScratchUpstream } from '../systems/upstream.ts'
import { runPaced } from '../workloads/paced-client.ts'

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '5' },
    rate: { type: 'string', default: '1000' },
    'rate-seconds': { type: 'string', default: '30' },
    sampling: { type: 'string', default: '1' },
    with: { type: 'string', default: '' },
  },
})
const processes = Number(values.processes)
const rate = Number(values.rate)
const rateSeconds = Number(values['rate-seconds'])
const { nodeFlags: extraFlags, env: extraEnv } = parseNodeWords(values.with)

/** An OTLP/HTTP endpoint that reads and drops every export, as bench/telemetry.ts's sink. */
const sink = createServer((req, res) => {
  req.resume()
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
})
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve))
const sinkPort = (sink.address() as AddressInfo).port

const variants = [
  { name: 'metrics', bootstrap: '' },
  {
    name: 'metrics-trace',
    bootstrap: `telemetry:\n  tracing: {otlpEndpoint: 'http://127.0.0.1:${sinkPort}/v1/traces', samplingPercent: ${values.sampling}}\n`,
  },
] as const

interface Reading {
  readonly atRate: number
  readonly quiet: number
  /** At rate: resident MiB by kind of mapping (smapsByKind), and the serving thread's V8 heap (admin /memory). */
  readonly kinds: ReadonlyMap<string, number>
}

/**
 * Resident MiB of `pid` by kind of mapping: anonymous (V8 heap pages of every isolate, malloc arenas and
 * chunks), anonymous executable (JIT code), and each file by name (node's binary text paged in).
 */
function smapsByKind(pid: number): Map<string, number> {
  const kinds = new Map<string, number>()
  let kind = ''
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ (\S{4}) [0-9a-f]+ \S+ \d+\s*(.*)$/.exec(line)
    if (header !== null) {
      const [, perms = '', path = ''] = header
      kind =
        path === ''
          ? perms.includes('x')
            ? 'anonymous executable (JIT code)'
            : 'anonymous (V8 heaps, malloc)'
          : path.startsWith('[')
            ? `kernel ${path}`
            : `file ${path.split('/').at(-1)}`
    } else if (line.startsWith('Rss:')) {
      kinds.set(kind, (kinds.get(kind) ?? 0) + Number(line.split(/\s+/)[1]) / 1024)
    }
  }
  return kinds
}

/** The serving thread's V8 heap, physical MiB over all spaces (admin /memory). */
async function servingHeapMiB(adminPort: number): Promise<number> {
  const memory = (await (await fetch(`http://127.0.0.1:${adminPort}/memory`)).json()) as {
    heap_spaces: Record<string, { physical: number }>
  }
  return Object.values(memory.heap_spaces).reduce((sum, space) => sum + space.physical, 0) / 1024 / 1024
}

/**
 * The V8 heap a worker thread holds after a full collection, used MiB: a bare one (node's worker bootstrap),
 * and one that has loaded what the span export thread loads (dist/telemetry/otlp-export-thread.js's imports).
 */
async function workerHeapUsedMiB(loadExportModules: boolean): Promise<number> {
  const modules = [
    '@opentelemetry/api',
    '@opentelemetry/core',
    '@opentelemetry/exporter-trace-otlp-http',
    '@opentelemetry/resources',
    '@opentelemetry/sdk-trace-base',
  ]
  const source = `
    const { parentPort } = require('node:worker_threads')
    const { createRequire } = require('node:module')
    const load = createRequire(${JSON.stringify(join(repoRoot, 'package.json'))})
    for (const name of ${JSON.stringify(loadExportModules ? modules : [])}) load(name)
    require('node:v8').setFlagsFromString('--expose-gc')
    const collect = require('node:vm').runInNewContext('gc')
    collect(); collect()
    parentPort.postMessage(require('node:v8').getHeapStatistics().used_heap_size)`
  const worker = new Worker(source, { eval: true })
  const [used] = (await once(worker, 'message')) as [number]
  await worker.terminate()
  return used / 1024 / 1024
}
const bareWorkerHeap = await workerHeapUsedMiB(false)
const exportWorkerHeap = await workerHeapUsedMiB(true)

const { workDir, upstream } = await startScratchUpstream('tracing-rss')
const readings = new Map<string, Reading[]>(variants.map((v) => [v.name, []]))

async function measure(variant: (typeof variants)[number], index: number): Promise<Reading> {
  const [port] = await freePorts(1)
  const proxy = await startOutrigger({
    name: `${variant.name}-${index}`,
    workDir,
    resources: { 'sidecar.yaml': ingressSidecar(port, upstream.port) },
    extraBootstrap: variant.bootstrap,
    nodeFlags: extraFlags,
    env: { ...process.env, ...extraEnv },
  })
  try {
    await get(port, '/1k')
    const paced = await runPaced({ port }, { path: '/1k', rate, seconds: rateSeconds, connections: 16 })
    if (paced.errors > 0 || paced.non2xx > 0)
      process.stderr.write(
        `${variant.name} #${index + 1}: ${paced.errors} errors, ${paced.non2xx} non-2xx of ${paced.sent}\n`,
      )
    const atRate = memory([proxy.child.pid]).rssMiB
    const kinds = smapsByKind(proxy.child.pid)
    kinds.set("of the anonymous: the serving thread's V8 heap", await servingHeapMiB(proxy.adminPort))
    await sleep(10_000)
    const quiet = memory([proxy.child.pid]).rssMiB
    process.stderr.write(
      `${variant.name} #${index + 1}: ${atRate.toFixed(1)} MiB at ${rate} req/s, ${quiet.toFixed(1)} after 10 s quiet\n`,
    )
    return { atRate, quiet, kinds }
  } finally {
    await proxy.stop()
  }
}

try {
  for (let i = 0; i < processes; i++) {
    const order = i % 2 === 0 ? variants : [...variants].reverse()
    for (const v of order) readings.get(v.name)?.push(await measure(v, i))
  }
} finally {
  sink.close()
  await stopAll()
}

const med = (name: string, pick: (r: Reading) => number): number =>
  median((readings.get(name) ?? []).map(pick))
function kindRows(): string[] {
  const names = new Set(
    variants.flatMap((v) => (readings.get(v.name) ?? []).flatMap((r) => [...r.kinds.keys()])),
  )
  const rows: string[] = []
  for (const kind of names) {
    const off = med('metrics', (r) => r.kinds.get(kind) ?? 0)
    const on = med('metrics-trace', (r) => r.kinds.get(kind) ?? 0)
    if (Math.max(off, on) >= 0.3)
      rows.push(`| ${kind} | ${off.toFixed(1)} | ${on.toFixed(1)} | ${(on - off).toFixed(1)} |`)
  }
  return rows
}

const lines = [
  `Made by \`node bench/micro/tracing-rss.ts ${process.argv.slice(2).join(' ')}\` at commit \`${gitCommit(repoRoot)}\`, node ${process.version}.`,
  '',
  `| variant | RSS at ${rate} req/s (median of ${processes}) | after 10 s quiet |`,
  '| --- | ---: | ---: |',
  ...variants.map(
    (v) =>
      `| ${v.name} | ${med(v.name, (r) => r.atRate).toFixed(1)} | ${med(v.name, (r) => r.quiet).toFixed(1)} |`,
  ),
  `| tracing adds | ${(med('metrics-trace', (r) => r.atRate) - med('metrics', (r) => r.atRate)).toFixed(1)} | ${(med('metrics-trace', (r) => r.quiet) - med('metrics', (r) => r.quiet)).toFixed(1)} |`,
  '',
  `A worker thread's V8 heap after a full collection (in this bench's process): bare ${bareWorkerHeap.toFixed(1)} MiB used, ` +
    `with the span export thread's modules loaded ${exportWorkerHeap.toFixed(1)} MiB.`,
  '',
  `Where the RSS at ${rate} req/s is (MiB, medians; kinds under 0.3 MiB in both left out):`,
  '',
  '| kind | metrics | metrics-trace | tracing adds |',
  '| --- | ---: | ---: | ---: |',
  ...kindRows(),
]
process.stdout.write(`${lines.join('\n')}\n`)
