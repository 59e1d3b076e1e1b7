// Micro-benchmark: the cost of the shared counter table's operations against the plain fields they replace.
//
// Run: node bench/micro/shared-counters.ts   (prints ns per operation; the contended cases run 2 worker threads)

import { Worker } from 'node:worker_threads'
import { SharedCounters } from '../../src/shared/shared-counters.ts'

const N = 20_000_000

function time(label: string, op: () => void, n = N): void {
  for (let i = 0; i < n / 10; i++) op()
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) op()
  const ns = Number(process.hrtime.bigint() - start) / n
  console.log(`${label.padEnd(64)} ${ns.toFixed(2).padStart(7)} ns/op`)
}

class PlainCounters {
  active = 0
  total = 0
}
const plain = new PlainCounters()
time('plain field: active++ total++ active-- (the code before)', () => {
  plain.active++
  plain.total++
  plain.active--
})

for (const shared of [false, true]) {
  const table = SharedCounters.create(1024, shared)
  const { cells, base } = table.block('outbound|80||svc.default.svc.cluster.local')
  const kind = shared ? 'SharedArrayBuffer' : 'ArrayBuffer'
  time(`Atomics.add ×3 on a ${kind} (acquire + release)`, () => {
    Atomics.add(cells, base, 1)
    Atomics.add(cells, base + 1, 1)
    Atomics.sub(cells, base, 1)
  })
  time(`plain cells[i] read + write (no Atomics) on a ${kind}`, () => {
    cells[base + 4] = cells[base + 4] + 1
  })
  time(`admit as the breaker does: add, compare, (no) rollback; ${kind}`, () => {
    if (Atomics.add(cells, base + 2, 1) >= 1_000_000) Atomics.sub(cells, base + 2, 1)
    Atomics.sub(cells, base + 2, 1)
  })
  time(`compareExchange loop taking a token, uncontended; ${kind}`, () => {
    Atomics.store(cells, base + 3, 5)
    let t = Atomics.load(cells, base + 3)
    while (t > 0) {
      const seen = Atomics.compareExchange(cells, base + 3, t, t - 1)
      if (seen === t) break
      t = seen
    }
  })
  time(
    `block(key): hash + probe (configure time only); ${kind}`,
    () => {
      table.block('outbound|80||svc.default.svc.cluster.local')
    },
    2_000_000,
  )
  time(
    `now(): the shared clock; ${kind}`,
    () => {
      table.now()
    },
    5_000_000,
  )
}

/** Two threads each doing `ops` Atomics.add on cell `a` / `b`: ns per op, wall time over both. */
async function contended(label: string, a: number, b: number, ops: number): Promise<void> {
  const table = SharedCounters.create(16, true)
  const source = `
    const { workerData, parentPort } = require('node:worker_threads')
    const cells = new Int32Array(workerData.buffer)
    parentPort.once('message', () => {
      const start = process.hrtime.bigint()
      for (let i = 0; i < workerData.ops; i++) Atomics.add(cells, workerData.index, 1)
      parentPort.postMessage(Number(process.hrtime.bigint() - start))
    })`
  const workers = [a, b].map(
    (index) => new Worker(source, { eval: true, workerData: { buffer: table.buffer, index, ops } }),
  )
  await Promise.all(workers.map((w) => new Promise((r) => w.once('online', r))))
  const done = workers.map((w) => new Promise<number>((r) => w.once('message', r)))
  for (const w of workers) w.postMessage('go')
  const spent = await Promise.all(done)
  await Promise.all(workers.map((w) => w.terminate()))
  const ns = Math.max(...spent) / ops
  console.log(`${label.padEnd(64)} ${ns.toFixed(2).padStart(7)} ns/op`)
}

const firstSlot = table0Base()
function table0Base(): number {
  return SharedCounters.create(16, true).block('x').base
}
await contended('2 threads, Atomics.add on the same cell', firstSlot, firstSlot, 20_000_000)
await contended('2 threads, Atomics.add on cells 64 bytes apart', firstSlot, firstSlot + 16, 20_000_000)
