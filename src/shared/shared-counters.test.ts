import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import { describe, expect, it } from 'vitest'
import { blockValues, decrementToZero, elapsedMs, SharedCounters } from './shared-counters.ts'

const moduleUrl = new URL('./shared-counters.ts', import.meta.url).href

/**
 * A real worker thread that attaches to the table, looks up `keys` and adds 1 to each key's first value
 * `rounds` times, then posts back the base index it got for each key.
 */
function adder(table: SharedCounters, keys: readonly string[], rounds: number): Promise<number[]> {
  const source = `
    const { workerData, parentPort } = require('node:worker_threads')
    import(workerData.moduleUrl).then(({ SharedCounters }) => {
      const table = SharedCounters.attach(workerData.buffer)
      const blocks = workerData.keys.map((k) => table.block(k))
      for (let r = 0; r < workerData.rounds; r++) for (const b of blocks) Atomics.add(b.cells, b.base, 1)
      parentPort.postMessage(blocks.map((b) => b.base))
    })`
  const worker = new Worker(source, {
    eval: true,
    workerData: { moduleUrl, buffer: table.buffer, keys, rounds },
  })
  return once(worker, 'message').then(([bases]) => bases as number[])
}

describe('SharedCounters', () => {
  it('claims one block per key and finds the same block again', () => {
    const table = SharedCounters.create(64, false)
    const a = table.block('cluster|a')
    const b = table.block('cluster|b')
    expect(a.base).not.toBe(b.base)
    expect(table.block('cluster|a').base).toBe(a.base)
    expect(table.claimed).toBe(2)
    Atomics.add(a.cells, a.base + 3, 7)
    expect(table.find('cluster|a')?.cells[a.base + 3]).toBe(7)
    expect(table.find('cluster|never')).toBeUndefined()
    expect(table.claimed).toBe(2)
  })

  it('keeps colliding keys apart by probing (a table of 4 slots holds 4 keys)', () => {
    const table = SharedCounters.create(4, false)
    const bases = ['w', 'x', 'y', 'z'].map((k) => table.block(k).base)
    expect(new Set(bases).size).toBe(4)
    expect(['w', 'x', 'y', 'z'].map((k) => table.find(k)?.base)).toEqual(bases)
  })

  it('hands out a private block once full, and says so once', () => {
    const table = SharedCounters.create(2, false)
    const full: string[] = []
    table.onFull((key) => full.push(key))
    table.block('a')
    table.block('b')
    const overflow = table.block('c')
    expect(overflow.cells).not.toBe(table.cells)
    expect(overflow.cells.length).toBe(blockValues)
    table.block('d')
    expect(full).toEqual(['c'])
    expect(table.find('c')).toBeUndefined()
  })

  it('two worker threads adding to the same keys at once get the same slots and lose no update', async () => {
    const table = SharedCounters.create(1024, true)
    const keys = Array.from({ length: 300 }, (_, i) => `outbound|80||svc-${i}.default.svc.cluster.local`)
    const rounds = 2_000
    const [first, second] = await Promise.all([adder(table, keys, rounds), adder(table, keys, rounds)])
    expect(second).toEqual(first)
    expect(new Set(first).size).toBe(keys.length)
    expect(table.claimed).toBe(keys.length)
    for (const key of keys) {
      const block = table.find(key)
      expect(block).toBeDefined()
      if (block !== undefined) expect(Atomics.load(block.cells, block.base)).toBe(2 * rounds)
    }
  })

  it('gives a worker thread the same clock as the thread that created the table', async () => {
    const table = SharedCounters.create(4, true)
    const source = `
      const { workerData, parentPort } = require('node:worker_threads')
      import(workerData.moduleUrl).then(({ SharedCounters }) => {
        parentPort.postMessage(SharedCounters.attach(workerData.buffer).now())
      })`
    const worker = new Worker(source, { eval: true, workerData: { moduleUrl, buffer: table.buffer } })
    const before = table.now()
    const [theirs] = (await once(worker, 'message')) as [number]
    const after = table.now()
    // The worker started after `before` (its own performance.now() began near 0) and answered before `after`.
    expect(elapsedMs(theirs, before)).toBeGreaterThanOrEqual(-1)
    expect(elapsedMs(after, theirs)).toBeGreaterThanOrEqual(-1)
  })

  it('measures elapsed time across the Int32 wrap', () => {
    expect(elapsedMs(-2_147_483_648 + 5, 2_147_483_647 - 4)).toBe(10)
  })

  it('decrementToZero stops at zero', () => {
    const cells = new Int32Array(1)
    cells[0] = 1
    decrementToZero(cells, 0)
    decrementToZero(cells, 0)
    expect(cells[0]).toBe(0)
  })
})
