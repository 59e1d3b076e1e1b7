// Micro-benchmark: the per-request cost of xxHash64 (Envoy's consistent-hash function) from npm packages, on 10–40 byte keys.
//
// Run: npm install --no-save hash-wasm @node-rs/xxhash   (the candidates not in package.json; skipped if absent)
//      node bench/micro/xxhash64.ts                  ns per call, median of 5 timed rounds
//      node bench/micro/xxhash64.ts --instructions   instructions per call under valgrind's callgrind
// Each case hashes a key and splits the 64-bit result into the two 32-bit halves the ring and the Maglev
// table compare, beside the 32-bit MurmurHash3 it replaced; the last two run the balancers' whole path.
// Timed rounds swing with what else the machine runs; callgrind's counts do not: each case runs in its
// own process under callgrind with collection switched on only around 100k calls after the warm-up,
// with V8 --single-threaded so that no background compiler or GC thread runs into the counted window.

import { execFileSync, spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import xxhash from 'xxhash-wasm'
import { xxHash64Into } from '../../src/upstream/lb/hash.ts'
import { requestHash } from '../../src/upstream/lb/hash-policy.ts'
import { MaglevTable } from '../../src/upstream/lb/maglev.ts'
import { HashRing } from '../../src/upstream/lb/ring-hash.ts'
import { request } from '../../src/upstream/lb/test-support.ts'

const N = 2_000_000
const ROUNDS = 5
const WARMUP = 200_000
/** Calls counted under callgrind. */
const CALLS = 100_000

const { values } = parseArgs({
  options: {
    instructions: { type: 'boolean', default: false },
    case: { type: 'string' },
    calls: { type: 'string', default: String(CALLS) },
  },
})

/** The cases, in the order they print. */
const cases: { label: string; op: (key: string) => number }[] = []
function register(label: string, op: (key: string) => number): void {
  cases.push({ label, op })
}

/**
 * Keys of 10 to 40 bytes: header values, session ids, client addresses. Each is re-decoded from bytes
 * so it is a flat one-byte string, as Node's HTTP parser hands header values over (a template
 * literal would leave a cons string, slower to read character by character).
 */
const keys = Array.from({ length: 1024 }, (_, i) => {
  const kinds = [
    `user-${i * 7919}`,
    `10.244.${i % 250}.${(i * 13) % 250}`,
    `sess-${(i * 2654435761) >>> 0}-abcdefgh`,
  ]
  return Buffer.from(`${kinds[i % 3]}${'x'.repeat(i % 16)}`, 'latin1').toString('latin1')
})

/** The 32-bit MurmurHash3 (x86) over UTF-16 code units that the balancers used before: the baseline. */
function murmur3(text: string): number {
  let h = 0
  const n = text.length
  let i = 0
  for (; i + 1 < n; i += 2) {
    let k = text.charCodeAt(i) | (text.charCodeAt(i + 1) << 16)
    k = Math.imul(k, 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
    h = (h << 13) | (h >>> 19)
    h = (Math.imul(h, 5) + 0xe6546b64) | 0
  }
  if (i < n) {
    let k = Math.imul(text.charCodeAt(i), 0xcc9e2d51)
    k = (k << 15) | (k >>> 17)
    h ^= Math.imul(k, 0x1b873593)
  }
  h ^= n * 2
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** One 64-bit cell and its two 32-bit halves (little-endian: [lo, hi]). */
const cell = new BigUint64Array(1)
const halves = new Uint32Array(cell.buffer)

interface NodeRsXxhash {
  xxh64(input: string, seed?: bigint): bigint
}
interface HashWasmHasher {
  init(): HashWasmHasher
  update(data: string): HashWasmHasher
  digest(outputType: 'binary'): Uint8Array
}
interface HashWasm {
  createXXHash64(seedLow?: number, seedHigh?: number): Promise<HashWasmHasher>
}

async function optional<T>(name: string): Promise<T | undefined> {
  try {
    return (await import(name)) as T
  } catch {
    if (values.case === undefined)
      console.log(`${name.padEnd(64)} not installed (npm install --no-save ${name})`)
    return undefined
  }
}

const wasm = await xxhash()
if (wasm.h64('foo') !== 3728699739546630719n)
  throw new Error("xxhash-wasm disagrees with Envoy's hash_test.cc")
register('MurmurHash3 x86_32 in JS (the hash it replaces, not Envoy-compatible)', (k) => murmur3(k))
register('xxhash-wasm h64 → BigInt', (k) => Number(wasm.h64(k) & 1n))
register('xxhash-wasm h64 → BigUint64Array → hi, lo', (k) => {
  cell[0] = wasm.h64(k)
  return halves[0] ^ halves[1]
})
register('xxhash-wasm h64 → h & 0xffffffffn, h >> 32n → hi, lo', (k) => {
  const h = wasm.h64(k)
  return Number(h & 0xffffffffn) ^ Number(h >> 32n)
})

const nodeRs = await optional<NodeRsXxhash>('@node-rs/xxhash')
if (nodeRs !== undefined) {
  if (nodeRs.xxh64('foo') !== 3728699739546630719n)
    throw new Error("@node-rs/xxhash disagrees with Envoy's hash_test.cc")
  register('@node-rs/xxhash xxh64 (N-API) → BigUint64Array → hi, lo', (k) => {
    cell[0] = nodeRs.xxh64(k)
    return halves[0] ^ halves[1]
  })
}

const hashWasm = await optional<HashWasm>('hash-wasm')
if (hashWasm !== undefined) {
  const hasher = await hashWasm.createXXHash64()
  register('hash-wasm createXXHash64 init/update/digest(binary) → hi, lo', (k) => {
    const bytes = hasher.init().update(k).digest('binary')
    return (bytes[0] | (bytes[1] << 8)) ^ (bytes[4] | (bytes[5] << 8))
  })
}

// The whole per-request path as the balancers run it: key → hash halves → ring or table slot.
const out = new Uint32Array(2)
register('src xxHash64Into (the module the balancers use)', (k) => {
  xxHash64Into(k, out)
  return out[0] ^ out[1]
})
const endpoints = Array.from({ length: 10 }, (_, i) => ({
  hostPort: `10.0.0.${i}:8080`,
  weight: 1,
  activeRequests: 0,
}))
const ring = new HashRing(endpoints, 1024)
const table = new MaglevTable(endpoints, 65537)
const requests = keys.map((k) => request({ 'x-user': k }))
const userHeader = { kind: 'header', name: 'x-user' } as const
let next = 0
register('header key → requestHash → HashRing.lookup (10 hosts, 1030 points)', () => {
  const r = requests[next++ & 1023]
  requestHash(userHeader, r, out)
  return ring.lookup(out[0], out[1])
})
register('header key → requestHash → MaglevTable.lookup (10 hosts, 65537 slots)', () => {
  const r = requests[next++ & 1023]
  requestHash(userHeader, r, out)
  return table.lookup(out[0], out[1])
})

if (values.case !== undefined) {
  // One case for the callgrind driver: warm up, say "ready", run `--calls` calls on a line from stdin, say "done".
  const { op } = cases[Number(values.case)]
  let sink = 0
  for (let i = 0; i < WARMUP; i++) sink ^= op(keys[i & 1023])
  const calls = Number(values.calls)
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  process.stdout.write('ready\n')
  await lines.next()
  for (let i = 0; i < calls; i++) sink ^= op(keys[i & 1023])
  process.stdout.write(sink === 0.5 ? 'never\n' : 'done\n')
  await lines.next()
  process.exit(0)
} else if (values.instructions) {
  console.log(
    `node ${process.version}, callgrind over ${CALLS} calls after ${WARMUP} of warm-up, keys of 10-40 bytes`,
  )
  for (let i = 0; i < cases.length; i++) {
    const perCall = (await collected(i)) / CALLS
    console.log(`${cases[i].label.padEnd(72)} ${perCall.toFixed(0).padStart(6)} instructions/call`)
  }
} else {
  console.log(
    `node ${process.version}, ${N} calls per round, median of ${ROUNDS} rounds, keys of 10-40 bytes`,
  )
  for (const { label, op } of cases)
    console.log(`${label.padEnd(72)} ${time(op).toFixed(1).padStart(7)} ns/call`)
}

/**
 * Instructions callgrind counted (all threads) while case `index` ran CALLS calls: collection is off
 * from the start and switched on with callgrind_control only around the calls, as instructions.ts does.
 */
async function collected(index: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'xxhash64-callgrind-'))
  const script = new URL(import.meta.url).pathname
  const args = ['--tool=callgrind', '--instr-atstart=no', `--callgrind-out-file=${dir}/cg.%p`]
  const child = spawn(
    'valgrind',
    [
      ...args,
      process.execPath,
      '--single-threaded',
      script,
      '--case',
      String(index),
      '--calls',
      String(CALLS),
    ],
    {
      stdio: ['pipe', 'pipe', 'ignore'],
    },
  )
  const said = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  const expect = async (word: string) => {
    const line = await said.next()
    if (line.value !== word) throw new Error(`case ${index}: expected "${word}", got ${String(line.value)}`)
  }
  const control = (...flags: string[]) =>
    execFileSync('callgrind_control', [...flags, String(child.pid)], { stdio: 'ignore' })
  await expect('ready')
  control('-i', 'on')
  child.stdin.write('go\n')
  await expect('done')
  control('-i', 'off')
  control('-d')
  child.stdin.end('exit\n')
  await new Promise((resolve) => child.once('exit', resolve))
  const dump = (await readdir(dir)).find((f) => f.endsWith('.1'))
  if (dump === undefined) throw new Error(`case ${index}: callgrind wrote no dump`)
  const totals = /^totals: (\d+)/m.exec(await readFile(join(dir, dump), 'utf8'))
  await rm(dir, { recursive: true, force: true })
  if (totals === null) throw new Error(`case ${index}: no totals in the dump`)
  return Number(totals[1])
}

/** The median of ROUNDS timed rounds of N calls, after a warm-up, in ns per call. */
function time(op: (key: string) => number): number {
  let sink = 0
  for (let i = 0; i < WARMUP; i++) sink ^= op(keys[i & 1023])
  const runs: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < N; i++) sink ^= op(keys[i & 1023])
    runs.push(Number(process.hrtime.bigint() - start) / N)
  }
  if (sink === 0.5) console.log(sink)
  return runs.sort((a, b) => a - b)[ROUNDS >> 1]
}
