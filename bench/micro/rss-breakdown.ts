// Micro-benchmark: where the proxy's RSS lives (/proc/<pid>/smaps grouped by kind of mapping) when idle, at 1000 req/s and after a burst.
//
// Run: npm run build && node bench/micro/rss-breakdown.ts [--processes 3] [--rate-seconds 60] [--quiet 60]
//        [--with '--flag NAME=value …'] [--no-malloc-info]
//
// Each process starts fresh (as idle-memory.ts starts it: an ingress sidecar to the bench's nginx) and is read
// at four moments: idle (5 s after start and one request), at the end of `--rate-seconds` at 1000 req/s (1 KiB,
// 16 connections), right after a saturation burst (50 connections, 10 s of 1 KiB and 5 s of 64 KiB, as
// bench/footprint.ts) and `--quiet` seconds after it. Each reading groups the resident pages of every mapping:
// glibc's main arena ([heap]) and its thread arenas (anonymous, 64 MiB-aligned: HEAP_MAX_SIZE in glibc's
// arena.c), thread stacks (an anonymous mapping right above a one-page guard), WebAssembly memories (an
// accessible start of a reservation of gigabytes, V8's guard regions), anonymous executable memory (V8's code
// space and wasm code), the rest of the anonymous memory (V8's heap pages, malloc's mmap'd chunks), and files
// (the node binary, shared libraries, koffi's addon). Beside it: V8's own accounting (admin /memory heap
// spaces), the threads by name, and, with gdb, glibc's malloc_info(3) per arena (gdb stops the process for a
// moment; the reading is taken after smaps). `--with` runs the proxy with more node flags (`--…` words) or
// environment variables (`NAME=value` words).

import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { stopAll } from '../support/children.ts'
import { get } from '../support/http.ts'
import { parseNodeWords } from '../support/node-variant.ts'
import { freePorts } from '../support/ports.ts'
import { median } from '../support/stats.ts'
import { gitCommit, which } from '../support/tools.ts'
import { ingressSidecar, repoRoot, startOutrigger } from '../systems/outrigger-process.ts'
import { startScratchUpstream } from '../systems/upstream.ts'
import { runPaced } from '../workloads/paced-client.ts'
import { runThroughput } from '../workloads/throughput.ts'

const { values } = parseArgs({
  options: {
    processes: { type: 'string', default: '1' },
    'rate-seconds': { type: 'string', default: '60' },
    quiet: { type: 'string', default: '60' },
    with: { type: 'string', default: '' },
    'no-malloc-info': { type: 'boolean', default: false },
  },
})
const processes = Number(values.processes)
const rateSeconds = Number(values['rate-seconds'])
const quietSeconds = Number(values.quiet)
const { nodeFlags: extraFlags, env: extraEnv } = parseNodeWords(values.with)
const gdb = values['no-malloc-info'] ? undefined : which('gdb')

const KiB = 1024
const MiB = 1024 * KiB
/** glibc's HEAP_MAX_SIZE on 64-bit: every thread arena's heap is a mapping of this size, aligned to it. */
const ARENA_HEAP = 64 * MiB

interface Mapping {
  readonly start: number
  readonly end: number
  readonly perms: string
  readonly path: string
  readonly rss: number
  /** Pages V8 or glibc gave back with MADV_FREE: counted in the RSS until the kernel needs them. */
  readonly lazyFree: number
}

/** The mappings of `pid` in address order, with their resident bytes. */
function readSmaps(pid: number): Mapping[] {
  const mappings: Mapping[] = []
  let current:
    | { start: number; end: number; perms: string; path: string; rss: number; lazyFree: number }
    | undefined
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) [0-9a-f]+ \S+ \d+\s*(.*)$/.exec(line)
    if (header !== null) {
      if (current !== undefined) mappings.push(current)
      current = {
        start: Number.parseInt(header[1] as string, 16),
        end: Number.parseInt(header[2] as string, 16),
        perms: header[3] as string,
        path: header[4] ?? '',
        rss: 0,
        lazyFree: 0,
      }
    } else if (line.startsWith('Rss:') && current !== undefined) {
      current.rss = Number(line.split(/\s+/)[1]) * KiB
    } else if (line.startsWith('LazyFree:') && current !== undefined) {
      current.lazyFree = Number(line.split(/\s+/)[1]) * KiB
    }
  }
  if (current !== undefined) mappings.push(current)
  return mappings
}

const anonymous = (m: Mapping | undefined): boolean => m !== undefined && m.path === ''
const reserved = (m: Mapping | undefined): boolean => anonymous(m) && m?.perms.startsWith('---') === true

/** The kind of memory a mapping holds (see the header). */
function kindOf(m: Mapping, before: Mapping | undefined, after: Mapping | undefined): string {
  if (m.path === '[heap]') return 'glibc main arena ([heap])'
  if (m.path === '[stack]') return 'main thread stack'
  if (m.path.startsWith('[')) return `kernel ${m.path}`
  if (m.path !== '') {
    const file = m.path.replace(/ \(deleted\)$/, '')
    if (file.endsWith('/node')) return 'file: node binary'
    if (file.endsWith('.node')) return `file: addon ${file.split('/').at(-1)}`
    if (/\/lib[^/]*\.so[.\d]*$/.test(file)) return 'file: shared libraries'
    return 'file: other'
  }
  if (m.perms.startsWith('---')) return 'reserved (no access)'
  const nextToGuard = reserved(after) && after?.start === m.end
  // Before the arenas: a wasm memory's reservation may start 64 MiB-aligned too.
  if (nextToGuard && (after?.end ?? 0) - (after?.start ?? 0) >= 1024 * MiB) return 'wasm memory'
  if (
    m.start % ARENA_HEAP === 0 &&
    ((m.end - m.start) % ARENA_HEAP === 0 || (nextToGuard && (after?.end ?? 0) % ARENA_HEAP === 0))
  )
    return 'glibc thread arenas'
  if (reserved(before) && before?.end === m.start && before.end - before.start === 4 * KiB)
    return 'thread stacks'
  if (m.perms.includes('x')) return 'anonymous executable (V8 code, wasm code)'
  return 'other anonymous (V8 heap pages, mmapped malloc chunks)'
}

function breakdown(mappings: readonly Mapping[]): Map<string, number> {
  const bytes = new Map<string, number>()
  mappings.forEach((m, i) => {
    const kind = kindOf(m, mappings[i - 1], mappings[i + 1])
    bytes.set(kind, (bytes.get(kind) ?? 0) + m.rss)
  })
  return bytes
}

/** Thread counts by name (/proc/<pid>/task/<tid>/comm). */
function threads(pid: number): Map<string, number> {
  const counts = new Map<string, number>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
    counts.set(name, (counts.get(name) ?? 0) + 1)
  }
  return counts
}

interface Arena {
  readonly systemBytes: number
  readonly freeBytes: number
}
interface MallocInfo {
  readonly arenas: readonly Arena[]
  readonly mmapBytes: number
  readonly mmapCount: number
}

/** glibc's malloc_info(3) of `pid`, called through gdb (stops the process for a moment), or undefined. */
function mallocInfo(pid: number, dir: string): MallocInfo | undefined {
  if (gdb === undefined) return undefined
  const out = join(dir, `malloc-info-${pid}.xml`)
  try {
    execFileSync(
      gdb,
      [
        '-p',
        String(pid),
        '-batch',
        '-nx',
        '-ex',
        `set $f = (void *) fopen("${out}", "w")`,
        '-ex',
        'call (int) malloc_info(0, $f)',
        '-ex',
        'call (int) fclose($f)',
      ],
      { stdio: 'ignore', timeout: 30_000 },
    )
    const xml = readFileSync(out, 'utf8')
    const arenas = [...xml.matchAll(/<heap nr="\d+">([\s\S]*?)<\/heap>/g)].map(([, body = '']) => {
      const size = (pattern: RegExp): number => Number(pattern.exec(body)?.[1] ?? 0)
      return {
        systemBytes: size(/<system type="current" size="(\d+)"/),
        freeBytes:
          size(/<total type="fast" count="\d+" size="(\d+)"/) +
          size(/<total type="rest" count="\d+" size="(\d+)"/),
      }
    })
    const tail = xml.slice(xml.lastIndexOf('</heap>'))
    const mmap = /<total type="mmap" count="(\d+)" size="(\d+)"/.exec(tail)
    return { arenas, mmapCount: Number(mmap?.[1] ?? 0), mmapBytes: Number(mmap?.[2] ?? 0) }
  } catch (err) {
    process.stderr.write(`malloc_info of ${pid} failed: ${(err as Error).message}\n`)
    return undefined
  } finally {
    rmSync(out, { force: true })
  }
}

interface Reading {
  readonly rss: number
  readonly lazyFree: number
  readonly kinds: Map<string, number>
  /** V8's physical bytes per heap space, and node's external / ArrayBuffers memory. */
  readonly v8: Map<string, number>
  readonly threads: Map<string, number>
  readonly malloc: MallocInfo | undefined
}

async function read(pid: number, adminPort: number, dir: string): Promise<Reading> {
  const mappings = readSmaps(pid)
  const memory = (await (await fetch(`http://127.0.0.1:${adminPort}/memory`)).json()) as {
    external: string
    array_buffers: string
    heap_spaces: Record<string, { physical: number }>
  }
  const v8 = new Map<string, number>(
    Object.entries(memory.heap_spaces).map(([space, s]) => [`V8 ${space}`, s.physical]),
  )
  v8.set(
    'V8 heap, all spaces',
    [...v8.values()].reduce((a, b) => a + b, 0),
  )
  v8.set('node external (Buffers and other off-heap)', Number(memory.external))
  v8.set('of which ArrayBuffers', Number(memory.array_buffers))
  return {
    rss: mappings.reduce((sum, m) => sum + m.rss, 0),
    lazyFree: mappings.reduce((sum, m) => sum + m.lazyFree, 0),
    kinds: breakdown(mappings),
    v8,
    threads: threads(pid),
    malloc: mallocInfo(pid, dir),
  }
}

const phases = [
  'idle',
  `end of ${rateSeconds} s at 1000 req/s`,
  'right after the burst',
  `${quietSeconds} s after the burst`,
] as const

const { workDir, upstream } = await startScratchUpstream('rss-breakdown')
const runs: Reading[][] = []
for (let i = 0; i < processes; i++) {
  const [port] = await freePorts(1)
  const proxy = await startOutrigger({
    name: `p${i}`,
    workDir,
    nodeFlags: extraFlags,
    env: { ...process.env, ...extraEnv },
    resources: { 'sidecar.yaml': ingressSidecar(port as number, upstream.port) },
  })
  const pid = proxy.child.pid
  const target = { port: port as number }
  try {
    const readings: Reading[] = []
    await get(port as number, '/1k')
    await sleep(5_000)
    readings.push(await read(pid, proxy.adminPort, workDir))
    await runPaced(target, { path: '/1k', rate: 1000, seconds: rateSeconds, connections: 16 })
    readings.push(await read(pid, proxy.adminPort, workDir))
    await runThroughput(target, { path: '/1k', connections: 50, seconds: 10 })
    await runThroughput(target, { path: '/64k', connections: 50, seconds: 5 })
    const burstEnded = performance.now()
    readings.push(await read(pid, proxy.adminPort, workDir))
    await sleep(Math.max(0, burstEnded + quietSeconds * 1000 - performance.now()))
    readings.push(await read(pid, proxy.adminPort, workDir))
    runs.push(readings)
    process.stderr.write(
      `process ${i + 1}: RSS ${readings.map((r) => (r.rss / MiB).toFixed(1)).join(' / ')} MiB\n`,
    )
  } finally {
    await proxy.stop()
  }
}
await stopAll()

const mib = (bytes: number): string => (bytes / MiB).toFixed(1)
/** The median over processes of one value per phase. */
const medianRow = (label: string, pick: (r: Reading) => number): string =>
  `| ${label} | ${phases.map((_, p) => mib(median(runs.map((run) => pick(run[p] as Reading))))).join(' | ')} |`
const header = [`| | ${phases.join(' | ')} |`, `| --- | ${phases.map(() => '---:').join(' | ')} |`]

const kinds = [...new Set(runs.flatMap((run) => run.flatMap((r) => [...r.kinds.keys()])))].sort()
const v8Rows = [...new Set(runs.flatMap((run) => run.flatMap((r) => [...r.v8.keys()])))]
const threadNames = [...new Set(runs.flatMap((run) => run.flatMap((r) => [...r.threads.keys()])))].sort()
const lines = [
  `Command: \`node bench/micro/rss-breakdown.ts ${process.argv
    .slice(2)
    .map((a) => (/\s/.test(a) ? `'${a}'` : a))
    .join(
      ' ',
    )}\` at \`${gitCommit(repoRoot)}\`, node ${process.version}; MiB, medians of ${processes} fresh process(es).`,
  '',
  'Resident memory by mapping (/proc/<pid>/smaps):',
  '',
  ...header,
  medianRow('**RSS**', (r) => r.rss),
  medianRow('of which LazyFree (MADV_FREE, the kernel takes it back under pressure)', (r) => r.lazyFree),
  ...kinds.map((kind) => medianRow(kind, (r) => r.kinds.get(kind) ?? 0)),
  '',
  "V8's and node's own accounting (admin /memory):",
  '',
  ...header,
  ...v8Rows.map((row) => medianRow(row, (r) => r.v8.get(row) ?? 0)),
  '',
  'Threads by name (count, median):',
  '',
  ...header,
  ...threadNames.map(
    (name) =>
      `| ${name} | ${phases.map((_, p) => median(runs.map((run) => (run[p] as Reading).threads.get(name) ?? 0))).join(' | ')} |`,
  ),
]
if (runs.every((run) => run.every((r) => r.malloc !== undefined))) {
  const malloc = (r: Reading): MallocInfo => r.malloc as MallocInfo
  lines.push(
    '',
    "glibc's arenas (malloc_info(3) through gdb):",
    '',
    ...header,
    `| arenas | ${phases.map((_, p) => median(runs.map((run) => malloc(run[p] as Reading).arenas.length))).join(' | ')} |`,
    medianRow('arena 0 (main): from the system', (r) => malloc(r).arenas[0]?.systemBytes ?? 0),
    medianRow('arena 0 (main): free in it', (r) => malloc(r).arenas[0]?.freeBytes ?? 0),
    medianRow('thread arenas: from the system', (r) =>
      malloc(r)
        .arenas.slice(1)
        .reduce((sum, a) => sum + a.systemBytes, 0),
    ),
    medianRow('thread arenas: free in them', (r) =>
      malloc(r)
        .arenas.slice(1)
        .reduce((sum, a) => sum + a.freeBytes, 0),
    ),
    medianRow('mmapped chunks (≥ mmap_threshold)', (r) => malloc(r).mmapBytes),
    `| mmapped chunks, count | ${phases.map((_, p) => median(runs.map((run) => malloc(run[p] as Reading).mmapCount))).join(' | ')} |`,
    '',
    'Per arena in the last process, MiB from the system / free:',
    '',
    ...header,
    ...Array.from(
      { length: Math.max(...(runs.at(-1) ?? []).map((r) => malloc(r).arenas.length)) },
      (_, a) =>
        `| arena ${a} | ${(runs.at(-1) ?? [])
          .map((r) => {
            const arena = malloc(r).arenas[a]
            return arena === undefined ? '–' : `${mib(arena.systemBytes)} / ${mib(arena.freeBytes)}`
          })
          .join(' | ')} |`,
    ),
  )
}
process.stdout.write(`${lines.join('\n')}\n`)
process.exit(0)
