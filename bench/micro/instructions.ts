// Micro-benchmark: CPU instructions per proxied request (valgrind's callgrind), Outrigger against the Node floor.
//
// Run: npm run build && node bench/micro/instructions.ts [--protocol http1|h2] [--requests N] [--warmup N] [--no-floor] [--cache] [--functions N] [--access-log TEXT|JSON] [--tracing off|PERCENT,…] [--live off|on,…] [--metrics on|off,…] [--no-overload]
//
// Timed runs on a shared 2-core machine swing by ±10 % from round to round; callgrind counts the
// instructions the process executes (all its threads, user space only), which do not depend on what
// else the machine is doing. Each system runs under callgrind with collection off, is warmed up (the
// JIT settles after tens of thousands of requests), then collects over a fixed number of 1 KiB
// requests from autocannon. `--cache` also simulates the caches and branch predictor (slower): the
// misses per request show whether two systems that execute alike also run alike. `--functions N` lists
// the N JavaScript functions (and regular expressions) that execute the most instructions per request,
// naming JIT code from the map V8 writes with --perf-basic-prof. `--tracing PERCENT` gives Outrigger's
// bootstrap tracing at that sampling percentage (to an OTLP sink in this process that accepts every export,
// or with `--collector dead` to a port nothing listens on), and `--tracing
// off,0` measures Outrigger twice, without tracing and at 0 %: a request that is not sampled should cost
// nothing more. `--live off,on` measures Outrigger with the live view (bootstrap `live.enabled`) off and on;
// each tracing run is measured once per live setting. `--metrics off,on` measures Outrigger with Istio's standard metrics
// disabled by a Telemetry resource (as bench/telemetry.ts's "off") and on, per tracing and live setting.
// What remains run to run is the JIT's background compilation still going on in the measured window,
// reported as its own line.

import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { type Child, startChild, stopAll } from '../support/children.ts'
import { waitHttp } from '../support/http.ts'
import { freePorts } from '../support/ports.ts'
import { ensureBinary } from '../support/tools.ts'
import {
  egressSidecar,
  ingressSidecar,
  productionNodeFlags,
  startOutrigger,
} from '../systems/outrigger-process.ts'
import { waitH2 } from '../systems/protocol-proxy.ts'
import { startUpstream } from '../systems/upstream.ts'
import { metricsOffResource } from '../workloads/metrics-off.ts'
import { protocolServiceEntry, startPrintingPort } from '../workloads/protocol-cases.ts'

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '3000' },
    warmup: { type: 'string', default: '40000' },
    cache: { type: 'boolean', default: false },
    functions: { type: 'string', default: '0' },
    protocol: { type: 'string', default: 'http1' },
    /** TEXT or JSON: the proxy writes its access log (to a file in the work directory) in that encoding. */
    'access-log': { type: 'string' },
    tracing: { type: 'string', default: 'off' },
    /** The live view per run: off, on, or both (`off,on`). Unset: the bootstrap's default. */
    live: { type: 'string' },
    /** Istio's standard metrics per run: on (the default), off (a Telemetry resource disables them), or `off,on`. */
    metrics: { type: 'string', default: 'on' },
    /** live: spans go to an OTLP/HTTP sink in this process that accepts them; dead: to a port nothing listens on. */
    collector: { type: 'string', default: 'live' },
    /** Also measure the Node floor (`--no-floor` measures Outrigger alone, for an A/B of two builds). */
    floor: { type: 'boolean', default: true },
    /**
     * `--no-overload` turns Outrigger's overload manager off: under valgrind the event loop runs tens of times
     * slower, and on a busy machine its event-loop-delay trigger then sheds a few of the measured requests.
     */
    overload: { type: 'boolean', default: true },
  },
  allowNegative: true,
})
const requests = Number(values.requests)
const warmup = Number(values.warmup)
const topFunctions = Number(values.functions)
const http2 = values.protocol === 'h2'
if (!http2 && values.protocol !== 'http1') throw new Error('--protocol is http1 or h2')
/** V8 writes /tmp/perf-<pid>.map (JIT code address, size, name) so that JIT code can be named. */
const perfMapFlags = topFunctions > 0 ? ['--perf-basic-prof'] : []
/** Outrigger's tracing per run: `off`, or a sampling percentage. */
const tracingRuns = values.tracing.split(',')
for (const run of tracingRuns)
  if (run !== 'off' && !(Number(run) >= 0 && Number(run) <= 100))
    throw new Error('--tracing is off or 0..100')
/** Outrigger's live view per run: undefined leaves the bootstrap's default. */
const liveRuns: (boolean | undefined)[] =
  values.live === undefined ? [undefined] : values.live.split(',').map((v) => v === 'on')
for (const run of values.live?.split(',') ?? [])
  if (run !== 'on' && run !== 'off') throw new Error('--live is off, on, or off,on')
/** Outrigger's metrics per run. */
const metricsRuns = values.metrics.split(',').map((v) => v === 'on')
for (const run of values.metrics.split(','))
  if (run !== 'on' && run !== 'off') throw new Error('--metrics is on, off, or off,on')

/** Functions of the callgrind profile, grouped by what they are (first match wins). */
const categories: [string, RegExp][] = [
  ['JIT compiler (background)', /compiler::|maglev|Maglev|turboshaft|Turboshaft|OptimizedCompilationJob/],
  [
    'garbage collector',
    /Scavenger|Heap::|MarkCompact|heap::|Sweeper|Evacuat|GCTracer|ConcurrentMarking|MarkingVisitor|RememberedSet|SlotSet|MemoryAllocator|PagedSpace|NewSpace|SemiSpace|LocalHeap/,
  ],
  ['inline-cache builtins', /Builtins_\w*IC/],
  ['other V8 builtins', /Builtins_/],
  ['JIT-generated code', /\?\?\?:0x/],
  ['libc', /libc\.so|libm\.so|libstdc/],
  ['libuv', /uv__|uv_/],
  ['nghttp2 (native HTTP/2)', /nghttp2/],
  ['Node native', /node::/],
  ['V8 runtime and other', /v8::|V8/],
]

interface Measured {
  readonly events: Record<string, number>
  readonly byCategory: Record<string, number>
  /** Instructions per request of each named JIT function, when --functions asked for them. */
  readonly byFunction: Map<string, number>
}

/** Names JIT code addresses from V8's perf map of process `pid` (sorted by address). */
async function perfMap(pid: number): Promise<(address: number) => string | undefined> {
  const entries: [number, number, string][] = []
  const file = `/tmp/perf-${pid}.map`
  const text = await readFile(file, 'utf8').catch(() => '')
  await rm(file, { force: true })
  for (const line of text.split('\n')) {
    const [start, size, ...name] = line.split(' ')
    if (name.length > 0) entries.push([Number.parseInt(start, 16), Number.parseInt(size, 16), name.join(' ')])
  }
  entries.sort((a, b) => a[0] - b[0])
  return (address) => {
    let lo = 0
    let hi = entries.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const [start, size, name] = entries[mid]
      if (address < start) hi = mid - 1
      else if (address >= start + size) lo = mid + 1
      else return name
    }
    return undefined
  }
}

/** `amount` requests of 1 KiB to `port`, 10 connections (h2: 10 streams each); how many were answered 2xx. */
async function load(port: number, amount: number): Promise<number> {
  if (!http2) {
    const result = await autocannon({
      url: `http://127.0.0.1:${port}/1k`,
      connections: 10,
      amount,
      timeout: 60,
    })
    return result['2xx']
  }
  const h2load = ensureBinary('h2load', 'nghttp2-client')
  const out = execFileSync(
    h2load,
    ['-n', String(amount), '-c', '10', '-m', '10', '-H', ':authority: h2:80', `http://127.0.0.1:${port}/`],
    {
      encoding: 'utf8',
    },
  )
  return Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? 0)
}

/** Warms `port` up, collects over `requests` requests, and reads the dump callgrind wrote into `dir`. */
async function measure(label: string, port: number, child: Child, dir: string): Promise<Measured> {
  process.stderr.write(`instructions: ${label}: warming up with ${warmup} requests\n`)
  await load(port, warmup)
  const control = (...args: string[]) =>
    execFileSync('callgrind_control', [...args, String(child.pid)], { stdio: 'ignore' })
  control('-i', 'on')
  const answered = await load(port, requests)
  control('-i', 'off')
  control('-d')
  if (answered !== requests) throw new Error(`${label}: ${answered} of ${requests} answered 2xx`)
  const name = (await readdir(dir)).find((f) => f.startsWith(`${label}.`) && f.endsWith('.1'))
  if (name === undefined) throw new Error(`${label}: callgrind wrote no dump`)
  const file = join(dir, name)
  const text = await readFile(file, 'utf8')
  const eventNames = (/^events: (.*)$/m.exec(text)?.[1] ?? '').split(' ')
  const totals = (/^totals: (.*)$/m.exec(text)?.[1] ?? '').split(' ').map(Number)
  const events: Record<string, number> = {}
  eventNames.forEach((e, i) => {
    events[e] = (totals[i] ?? 0) / requests
  })
  const annotated = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  })
  const byCategory: Record<string, number> = {}
  const byFunction = new Map<string, number>()
  const nameOf = topFunctions > 0 ? await perfMap(child.pid) : undefined
  for (const line of annotated.split('\n')) {
    const m = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line)
    if (m === null || m[2].includes('PROGRAM TOTALS')) continue
    const ir = Number(m[1].replaceAll(',', ''))
    const category = categories.find(([, re]) => re.test(m[2]))?.[0] ?? 'other'
    byCategory[category] = (byCategory[category] ?? 0) + ir / requests
    const address = /^\?\?\?:0x([0-9a-f]+)/.exec(m[2])?.[1]
    const name = address === undefined ? undefined : nameOf?.(Number.parseInt(address, 16))
    if (name !== undefined) byFunction.set(name, (byFunction.get(name) ?? 0) + ir / requests)
  }
  return { events, byCategory, byFunction }
}

function callgrindArgs(outFile: string): string[] {
  return [
    'valgrind',
    '--tool=callgrind',
    '--instr-atstart=no',
    `--callgrind-out-file=${outFile}.%p`,
    ...(values.cache ? ['--cache-sim=yes', '--branch-sim=yes'] : []),
  ]
}

const int = (n: number | undefined): string => (n === undefined ? '—' : Math.round(n).toLocaleString('en-US'))

async function main(): Promise<void> {
  ensureBinary('valgrind', 'valgrind')
  const workDir = await mkdtemp(join(tmpdir(), 'outrigger-instructions-'))
  const cgDir = join(workDir, 'callgrind')
  await mkdir(cgDir)
  // --perf-basic-prof also makes V8 write an isolate-*.log into the working directory: keep it scratch.
  const cwd = process.cwd()
  process.chdir(workDir)
  const results: [string, Measured][] = []
  try {
    const upstream = http2
      ? await startPrintingPort(
          'h2c upstream',
          join(import.meta.dirname, '..', 'systems', 'h2-upstream-server.ts'),
        )
      : await startUpstream(ensureBinary('nginx', 'nginx'), workDir).then((u) => ({ port: u.port, child: u }))
    if (values.floor) {
      const [port, spare] = await freePorts(2)
      const out = join(cgDir, 'floor')
      const [command, ...args] = [...callgrindArgs(out), process.execPath]
      const floorArgs = http2
        ? [
            'node-floor-h2-server.ts',
            String(port),
            String(upstream.port),
            String(spare),
            String(upstream.port),
          ]
        : ['node-floor-server.ts', String(port), String(upstream.port), 'envoy-headers']
      const child = startChild('node floor (callgrind)', command, [
        ...args,
        ...productionNodeFlags,
        ...perfMapFlags,
        join(import.meta.dirname, '..', 'systems', floorArgs[0]),
        ...floorArgs.slice(1),
      ])
      if (http2) await waitH2(port, 180_000, () => child.output(), child.exited)
      else await waitHttp(port, '/1k', 180_000, () => child.output(), child.exited)
      results.push([
        http2 ? 'Node floor (node:http2)' : 'Node floor + Envoy headers',
        await measure('floor', port, child, cgDir),
      ])
      await child.stop()
    }
    const runs = tracingRuns.flatMap((t) =>
      liveRuns.flatMap((l) => metricsRuns.map((m) => [t, l, m] as const)),
    )
    for (const [tracing, live, metrics] of runs) {
      const [port, deadCollector] = await freePorts(2)
      const collector = values.collector === 'dead' ? deadCollector : await otlpSinkPort()
      const liveLabel = live === undefined ? '' : live ? '-live' : '-live-off'
      const label =
        (tracing === 'off' ? 'outrigger' : `outrigger-tracing-${tracing}`) +
        liveLabel +
        (metrics ? '' : '-metrics-off')
      const out = join(cgDir, label)
      const proxy = await startOutrigger({
        name: label,
        extraBootstrap:
          (telemetryBootstrap(
            tracing === 'off'
              ? undefined
              : `  tracing: {otlpEndpoint: 'http://127.0.0.1:${collector}/v1/traces', samplingPercent: ${tracing}}\n`,
            values['access-log'] === undefined
              ? undefined
              : `  accessLog: {path: ${join(workDir, 'access.log')}, encoding: ${values['access-log']}}\n`,
          ) ?? '') +
          (live === undefined ? '' : `live: {enabled: ${live}}\n`) +
          (values.overload ? '' : 'overload: {enabled: false}\n'),
        workDir,
        resources: {
          ...(http2
            ? {
                'sidecar.yaml': egressSidecar(port),
                'services.yaml': protocolServiceEntry('h2', 'HTTP2', upstream.port),
              }
            : { 'sidecar.yaml': ingressSidecar(port, upstream.port) }),
          ...(metrics ? {} : { 'metrics-off.yaml': metricsOffResource }),
        },
        launcher: callgrindArgs(out),
        nodeFlags: perfMapFlags,
        readyTimeoutMs: 180_000,
      })
      const name =
        (tracing === 'off' ? 'Outrigger' : `Outrigger, tracing ${tracing} %`) +
        (live === undefined ? '' : live ? ', live view on' : ', live view off') +
        (metrics ? '' : ', metrics off')
      results.push([name, await measure(label, port, proxy.child, cgDir)])
      await proxy.stop()
    }
    await upstream.child.stop()
  } finally {
    await stopAll()
    process.chdir(cwd)
    await rm(workDir, { recursive: true, force: true })
  }
  const names = results.map(([n]) => n)
  const row = (label: string, get: (m: Measured) => number | undefined) =>
    `| ${label} | ${results.map(([, m]) => int(get(m))).join(' | ')} |`
  const lines = [
    `Per proxied 1 KiB ${http2 ? 'h2c stream' : 'HTTP/1.1 request'}, ${requests} requests after ${warmup} of warm-up, node ${process.version}:`,
    '',
    `| | ${names.join(' | ')} |`,
    `| --- | ${names.map(() => '---:').join(' | ')} |`,
    row('instructions', (m) => m.events.Ir),
    ...categories.map(([c]) => row(`… ${c}`, (m) => m.byCategory[c] ?? 0)),
    row('… other', (m) => m.byCategory.other ?? 0),
  ]
  if (values.cache) {
    lines.push(
      row('L1 instruction-cache misses', (m) => m.events.I1mr),
      row('L1 data-cache read misses', (m) => m.events.D1mr),
      row('L1 data-cache write misses', (m) => m.events.D1mw),
      row('conditional branches mispredicted', (m) => m.events.Bcm),
      row('indirect branches mispredicted', (m) => m.events.Bim),
    )
  }
  for (const [system, m] of results) {
    if (topFunctions === 0) break
    const top = [...m.byFunction].sort((a, b) => b[1] - a[1]).slice(0, topFunctions)
    lines.push('', `${system}: the JIT code that executes the most instructions per request`, '')
    lines.push('| instructions | function |', '| ---: | --- |')
    for (const [name, ir] of top) lines.push(`| ${int(ir)} | \`${name.replaceAll('|', '\\|')}\` |`)
  }
  process.stdout.write(`${lines.join('\n')}\n`)
}

await main()

/** The bootstrap's `telemetry` block with the given entries, or nothing when there are none. */
/** An OTLP/HTTP collector stand-in in this process: reads each export and answers 200, as a collector would. */
async function otlpSinkPort(): Promise<number> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
  })
  server.unref()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as AddressInfo).port
}

function telemetryBootstrap(...entries: (string | undefined)[]): string | undefined {
  const present = entries.filter((e) => e !== undefined)
  return present.length === 0 ? undefined : `telemetry:\n${present.join('')}`
}
