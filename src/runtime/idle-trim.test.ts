import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { IdleTrim } from './idle-trim.ts'

const MiB = 1024 * 1024
const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi')
const libc = koffi.load('libc.so.6')
const malloc = libc.func('void *malloc(size_t size)') as (size: number) => unknown
const free = libc.func('void free(void *ptr)') as (ptr: unknown) => void
const memset = libc.func('void *memset(void *s, int c, size_t n)') as (
  p: unknown,
  c: number,
  n: number,
) => unknown

/** Blocks that pin an arena's top until the test has ended (freed after it). */
const pins: unknown[] = []

/**
 * What a burst leaves: `bytes` of small mallocs (below glibc's mmap threshold, so they come from the
 * arena), touched, then freed, except the last, which pins the arena's top until the test ends. Freed
 * too, it would merge the burst into the top chunk and free() itself would give the memory back (the
 * trim threshold is 128 KiB) whenever nothing else was allocated above it: the RSS would not stay grown,
 * and a test reading its growth would depend on what else the process allocated meanwhile.
 */
function burstOfMallocs(bytes: number): void {
  const size = 4096
  const blocks: unknown[] = []
  for (let i = 0; i < bytes / size; i++) {
    const block = malloc(size)
    memset(block, 1, size)
    blocks.push(block)
  }
  for (const block of blocks.slice(0, -1)) free(block)
  pins.push(blocks.at(-1))
}

/** Keeps the event loop busy for most of every 100 ms (90 ms of work, 10 ms of waiting) for `ms`. */
async function busyFor(ms: number): Promise<void> {
  await busyUntil(() => false, ms)
}

/**
 * Keeps the event loop busy as busyFor does until `done()` holds (checked every 100 ms) or `maxMs` passed;
 * returns when `done()` was first seen to hold (performance.now()), or undefined. The tests read times from
 * this rather than assume them: on a loaded machine a burst of mallocs alone can take a second.
 */
async function busyUntil(done: () => boolean, maxMs: number): Promise<number | undefined> {
  const end = performance.now() + maxMs
  while (performance.now() < end) {
    const spin = performance.now() + 90
    while (performance.now() < spin) {}
    await sleep(10)
    if (done()) return performance.now()
  }
  return undefined
}

const trims: IdleTrim[] = []
afterEach(() => {
  for (const t of trims.splice(0)) t.close()
  for (const pin of pins.splice(0)) free(pin)
})

describe.skipIf(process.platform !== 'linux')("glibc's freed memory given back when idle", () => {
  it('trimNow returns the free pages of the arenas to the kernel', () => {
    const pin = malloc(64)
    burstOfMallocs(96 * MiB)
    const trim = new IdleTrim({ intervalMs: 60_000 })
    trims.push(trim)
    const before = process.memoryUsage.rss()
    expect(trim.trimNow()).toBe(true)
    expect(before - process.memoryUsage.rss()).toBeGreaterThan(48 * MiB)
    expect(trim.releasedBytes).toBeGreaterThan(48 * MiB)
    free(pin)
  })

  it('trims by itself once the event loop is idle after the RSS grew, and once only', async () => {
    const trim = new IdleTrim({ intervalMs: 200, growthBytes: 32 * MiB })
    trims.push(trim)
    burstOfMallocs(96 * MiB)
    await sleep(700)
    expect(trim.trims).toBe(1)
    expect(trim.releasedBytes).toBeGreaterThan(48 * MiB)
    await sleep(500)
    expect(trim.trims).toBe(1)
  })

  it('does not trim while the event loop is busy', async () => {
    const trim = new IdleTrim({ intervalMs: 100, growthBytes: 32 * MiB })
    trims.push(trim)
    burstOfMallocs(96 * MiB)
    await busyFor(1_000)
    expect(trim.trims).toBe(0)
  })

  it('trims while the event loop is busy too once the RSS grew, at most once per busy interval', async () => {
    // What the tests before left free in the arenas goes first, so that the burst below grows the RSS.
    const emptying = new IdleTrim({ intervalMs: 60_000 })
    emptying.trimNow()
    emptying.close()
    const trim = new IdleTrim({ intervalMs: 100, growthBytes: 32 * MiB, busyIntervalMs: 1_500 })
    trims.push(trim)
    burstOfMallocs(96 * MiB)
    expect(await busyUntil(() => trim.trims > 0, 5_000)).toBeDefined()
    expect(trim.trims).toBe(1)
    expect(trim.releasedBytes).toBeGreaterThan(32 * MiB)
    const first = trim.trimmedAt
    // Grown again right after: the next trim waits for the interval.
    burstOfMallocs(96 * MiB)
    expect(await busyUntil(() => trim.trims > 1, 5_000)).toBeDefined()
    expect(trim.trims).toBe(2)
    expect(trim.trimmedAt - first).toBeGreaterThanOrEqual(1_500)
  })

  it('trims while busy after less growth than an idle trim needs (busyGrowthBytes)', async () => {
    const emptying = new IdleTrim({ intervalMs: 60_000 })
    emptying.trimNow()
    emptying.close()
    // 24 MiB freed in the arenas: under the idle threshold (64 MiB), over the busy one (8 MiB).
    const busyTrim = (busyGrowthBytes: number): IdleTrim => {
      const t = new IdleTrim({ intervalMs: 100, growthBytes: 64 * MiB, busyGrowthBytes, busyIntervalMs: 300 })
      trims.push(t)
      return t
    }
    const trim = busyTrim(8 * MiB)
    burstOfMallocs(24 * MiB)
    expect(await busyUntil(() => trim.trims > 0, 3_000)).toBeDefined()
    expect(trim.trims).toBe(1)
    expect(trim.releasedBytes).toBeGreaterThan(12 * MiB)
    // The same growth with a busy threshold above it: no trim.
    emptying.trimNow()
    const strict = busyTrim(64 * MiB)
    burstOfMallocs(24 * MiB)
    await busyFor(800)
    expect(strict.trims).toBe(0)
  })

  it('trims again when a collection long after the burst frees its buffers, with no RSS growth to see', () => {
    // A child node with gc() exposed (for this test only) holds 64 MiB of small Buffers (malloc'd from the
    // arenas), trims once while they live, then drops and collects them: only the fall of `arrayBuffers` says
    // that the arenas now hold free memory.
    const script = `
      import { IdleTrim } from ${JSON.stringify(new URL('./idle-trim.ts', import.meta.url).href)}
      import { setTimeout as sleep } from 'node:timers/promises'
      const trim = new IdleTrim({ intervalMs: 200, growthBytes: 16 * 2 ** 20 })
      let held = Array.from({ length: 16384 }, () => Buffer.allocUnsafeSlow(4096).fill(1))
      await sleep(700)
      const first = trim.trims
      held = undefined
      globalThis.gc()
      const before = trim.releasedBytes
      await sleep(700)
      trim.close()
      console.log(JSON.stringify({ first, trims: trim.trims, released: trim.releasedBytes - before }))`
    const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    })
    const seen = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as {
      first: number
      trims: number
      released: number
    }
    expect(seen.first).toBe(1)
    expect(seen.trims).toBe(2)
    expect(seen.released).toBeGreaterThan(32 * MiB)
  })
})

/** Runs `script` (ES module text) in a child node with gc() exposed, as the node settings start the proxy; returns its last line as JSON. */
function inChildWithGc<T>(script: string): T {
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  })
  return JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as T
}

describe.skipIf(process.platform !== 'linux')('a collection before the trim', () => {
  it("is the memory-reducing one: the young generation's pages go back too", () => {
    const seen = inChildWithGc<{ before: number; after: number }>(`
      import { IdleTrim } from ${JSON.stringify(new URL('./idle-trim.ts', import.meta.url).href)}
      import { getHeapSpaceStatistics } from 'node:v8'
      import { setTimeout as sleep } from 'node:timers/promises'
      const youngBytes = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').physical_space_size
      const trim = new IdleTrim({ intervalMs: 200, growthBytes: 8 * 2 ** 20 })
      // Short-lived objects, as requests leave them: the young generation grows to its semi-spaces.
      let recent = []
      for (let i = 0; i < 3e6; i++) {
        recent.push({ i, s: 'x' + i })
        if (recent.length > 50000) recent = []
      }
      recent = []
      const before = youngBytes()
      await sleep(1_000)
      trim.close()
      console.log(JSON.stringify({ before, after: youngBytes() }))`)
    expect(seen.before).toBeGreaterThan(8 * MiB)
    expect(seen.after).toBeLessThan(2 * MiB)
  })

  it('comes after a compile too, alone: no trim without growth, and only once per compile', () => {
    // As a reload's compile leaves it: short-lived objects grew the young generation, with too little RSS
    // growth for a trim. The count given as \`compiles\` moves once; the collection follows it and no other.
    const script = (compiled: boolean) => `
      import { IdleTrim } from ${JSON.stringify(new URL('./idle-trim.ts', import.meta.url).href)}
      import { getHeapSpaceStatistics } from 'node:v8'
      import { setTimeout as sleep } from 'node:timers/promises'
      const youngBytes = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').physical_space_size
      let compiles = 0
      const trim = new IdleTrim({ intervalMs: 200, growthBytes: 2 ** 30, compiles: () => compiles })
      let recent = []
      for (let i = 0; i < 3e6; i++) {
        recent.push({ i, s: 'x' + i })
        if (recent.length > 50000) recent = []
      }
      recent = []
      const before = youngBytes()
      if (${compiled}) compiles++
      await sleep(1_000)
      trim.close()
      console.log(JSON.stringify({ before, after: youngBytes(), collections: trim.collections, trims: trim.trims }))`
    type Seen = { before: number; after: number; collections: number; trims: number }
    const compiled = inChildWithGc<Seen>(script(true))
    expect(compiled.before).toBeGreaterThan(8 * MiB)
    expect(compiled.after).toBeLessThan(2 * MiB)
    expect(compiled.collections).toBe(1)
    expect(compiled.trims).toBe(0)
    const notCompiled = inChildWithGc<Seen>(script(false))
    expect(notCompiled.after).toBeGreaterThan(8 * MiB)
    expect(notCompiled.collections).toBe(0)
  })

  it('follows a burst whose growth a busy trim already saw, once the event loop falls idle', () => {
    // The burst's 64 MiB of Buffers are live while the loop is busy: the busy trim finds nothing to give
    // back. Dropped at the burst's end, only a collection frees them; the idle trim must still come.
    const seen = inChildWithGc<{ busyTrims: number; trims: number; left: number }>(`
      import { IdleTrim } from ${JSON.stringify(new URL('./idle-trim.ts', import.meta.url).href)}
      import { setTimeout as sleep } from 'node:timers/promises'
      const trim = new IdleTrim({ intervalMs: 100, growthBytes: 16 * 2 ** 20, busyIntervalMs: 300 })
      let held = Array.from({ length: 16384 }, () => Buffer.allocUnsafeSlow(4096).fill(1))
      const end = performance.now() + 900
      while (performance.now() < end) {
        const spin = performance.now() + 90
        while (performance.now() < spin) {}
        await sleep(10)
      }
      const busyTrims = trim.trims
      held = undefined
      await sleep(1_000)
      trim.close()
      console.log(JSON.stringify({ busyTrims, trims: trim.trims, left: process.memoryUsage().arrayBuffers }))`)
    // At least one busy trim (a loaded machine's slow start can grow the RSS again for a second one), then
    // at least one more once idle: after the collection, and maybe another when V8's sweeper has freed the
    // last backing stores.
    expect(seen.busyTrims).toBeGreaterThanOrEqual(1)
    expect(seen.trims).toBeGreaterThan(seen.busyTrims)
    expect(seen.left).toBeLessThan(8 * MiB)
  })

  it("frees a burst's dropped buffers that no collection has reached yet, so the trim returns their memory", () => {
    // A child node with gc() exposed (as the node settings start the proxy) drops 64 MiB of small Buffers
    // without a collection, as a burst's last requests leave them: only a collection frees their malloc'd
    // memory, and only then can the trim give it back.
    const script = `
      import { IdleTrim } from ${JSON.stringify(new URL('./idle-trim.ts', import.meta.url).href)}
      import { setTimeout as sleep } from 'node:timers/promises'
      const trim = new IdleTrim({ intervalMs: 200, growthBytes: 16 * 2 ** 20 })
      let held = Array.from({ length: 16384 }, () => Buffer.allocUnsafeSlow(4096).fill(1))
      const dropped = process.memoryUsage().arrayBuffers
      held = undefined
      await sleep(1_000)
      trim.close()
      console.log(JSON.stringify({ dropped, left: process.memoryUsage().arrayBuffers, released: trim.releasedBytes }))`
    const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    })
    const seen = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as {
      dropped: number
      left: number
      released: number
    }
    expect(seen.dropped).toBeGreaterThan(60 * MiB)
    expect(seen.left).toBeLessThan(8 * MiB)
    expect(seen.released).toBeGreaterThan(32 * MiB)
  })
})
