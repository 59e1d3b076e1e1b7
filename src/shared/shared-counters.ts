// A fixed-size table of Int32 counter blocks in one (Shared)ArrayBuffer, found by key and updated with Atomics by every worker thread.
//
// Envoy keeps a cluster's circuit-breaker resources, outlier state and stats once per proxy and its
// worker threads update them atomically (source/common/upstream/resource_manager_impl.h: ResourceImpl
// over std::atomic). This table is that for worker_threads: the main thread creates it, each worker
// attaches to the same SharedArrayBuffer (workerData), and a module that needs per-proxy state asks for
// its key's block once, when its cluster, host or bucket is configured; requests then touch only
// `Atomics.*(cells, base + field)` (no allocation, no lookup). With one worker the same code runs on a
// plain ArrayBuffer.
//
// Layout: a 64-byte header, then `capacity` slots of 16 Int32 (one 64-byte cache line each, so two
// threads updating different slots do not share a line). A slot is [state, hashHigh, hashLow, 13 values];
// slots are claimed by open addressing (linear probing) on a 64-bit hash of the key, with a
// compareExchange on `state` deciding which thread claims an empty slot. Slots are never freed: keys are
// clusters, hosts and rate-limit buckets, which a proxy has a bounded number of; a full table hands out
// private blocks (exact per worker only) and says so once in the log.

/** Int32 cells per slot. */
const slotInts = 16
/** Cells of a slot before its values: state, hash high word, hash low word. */
const slotHeaderInts = 3
/** Values a block holds. */
export const blockValues = slotInts - slotHeaderInts
/** The table header: capacity, claimed slots, then the epoch as a Float64 at byte 8; 64 bytes in all. */
const headerInts = 16
const capacityCell = 0
const claimedCell = 1
const epochByte = 8

const empty = 0
const claiming = 1
const ready = 2

/** The slots of a default table: 1 MiB of address space, touched only as slots are claimed. */
export const defaultCapacity = 1 << 14

/** One key's values: `cells[base + i]` for i in [0, blockValues). Read and write them with Atomics. */
export interface CounterBlock {
  readonly cells: Int32Array
  readonly base: number
}

export class SharedCounters {
  readonly cells: Int32Array
  readonly #mask: number
  readonly #shared: boolean
  /** Added to performance.now() to get milliseconds since the table's epoch (the same instant in every thread). */
  readonly #clockShift: number
  #warnedFull = false
  #onFull: ((key: string) => void) | undefined

  private constructor(buffer: ArrayBufferLike) {
    this.cells = new Int32Array(buffer)
    const capacity = this.cells[capacityCell]
    this.#mask = capacity - 1
    this.#shared = buffer instanceof SharedArrayBuffer
    const epoch = new Float64Array(buffer, epochByte, 1)[0]
    this.#clockShift = performance.timeOrigin - epoch
  }

  /**
   * A new table of `capacity` slots (a power of two), on a SharedArrayBuffer when `shared` (to hand to
   * worker threads), else on a plain ArrayBuffer (one thread).
   */
  static create(capacity = defaultCapacity, shared = true): SharedCounters {
    if (capacity < 1 || (capacity & (capacity - 1)) !== 0)
      throw new RangeError('capacity must be a power of two')
    const bytes = (headerInts + capacity * slotInts) * 4
    const buffer = shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes)
    new Int32Array(buffer)[capacityCell] = capacity
    new Float64Array(buffer, epochByte, 1)[0] = performance.timeOrigin
    return new SharedCounters(buffer)
  }

  /** The table another thread created (its `buffer`, passed in workerData). */
  static attach(buffer: SharedArrayBuffer): SharedCounters {
    return new SharedCounters(buffer)
  }

  get buffer(): ArrayBufferLike {
    return this.cells.buffer
  }

  get capacity(): number {
    return this.#mask + 1
  }

  /** Slots claimed so far, by every thread. */
  get claimed(): number {
    return Atomics.load(this.cells, claimedCell)
  }

  /** Called once, with the key, the first time the table is full. */
  onFull(listener: (key: string) => void): void {
    this.#onFull = listener
  }

  /**
   * The block of `key`, claimed (zeroed) by whichever thread asks first; every thread asking for the same
   * key gets the same cells. Costs a hash and a probe: call it when configuring, not per request.
   */
  block(key: string): CounterBlock {
    const found = this.#probe(key, true)
    if (found >= 0) return { cells: this.cells, base: found }
    if (!this.#warnedFull) {
      this.#warnedFull = true
      this.#onFull?.(key)
    }
    return privateBlock()
  }

  /** The block of `key` if some thread claimed it, without claiming it (for readers such as the admin). */
  find(key: string): CounterBlock | undefined {
    const found = this.#probe(key, false)
    return found >= 0 ? { cells: this.cells, base: found } : undefined
  }

  /**
   * Milliseconds since the table's epoch, the same clock in every thread (performance.now() starts at
   * each thread's own origin), as an Int32 that wraps after 24.8 days: compare two readings with
   * `elapsedMs`, never with `<`.
   */
  now(): number {
    return (performance.now() + this.#clockShift) | 0
  }

  /** The index of the key's first value, or -1 (not found and not claimed, or the table is full). */
  #probe(key: string, claim: boolean): number {
    const cells = this.cells
    const high = hashHigh(key)
    const low = hashLow(key)
    const mask = this.#mask
    let slot = low & mask
    for (let probes = 0; probes <= mask; probes++, slot = (slot + 1) & mask) {
      const at = headerInts + slot * slotInts
      let state = Atomics.load(cells, at)
      if (state === empty) {
        if (!claim) return -1
        state = Atomics.compareExchange(cells, at, empty, claiming)
        if (state === empty) {
          Atomics.store(cells, at + 1, high)
          Atomics.store(cells, at + 2, low)
          Atomics.store(cells, at, ready)
          if (this.#shared) Atomics.notify(cells, at)
          Atomics.add(cells, claimedCell, 1)
          return at + slotHeaderInts
        }
      }
      // Another thread is writing this slot's hash: wait for it (at most a few stores).
      while (state === claiming) {
        if (this.#shared) Atomics.wait(cells, at, claiming, 1)
        state = Atomics.load(cells, at)
      }
      if (Atomics.load(cells, at + 1) === high && Atomics.load(cells, at + 2) === low) {
        return at + slotHeaderInts
      }
    }
    return -1
  }
}

/** A block of this thread's own, for state that no other thread shares (tests, a full table). */
export function privateBlock(): CounterBlock {
  return { cells: new Int32Array(blockValues), base: 0 }
}

/** `now - then` for two SharedCounters.now() readings, correct across the Int32 wrap. */
export function elapsedMs(now: number, then: number): number {
  return (now - then) | 0
}

/**
 * Subtracts one unless the cell is already 0 (a release after a reset must not go negative): one
 * Atomics.sub in the common case, given back when it went below zero.
 */
export function decrementToZero(cells: Int32Array, index: number): void {
  if (Atomics.sub(cells, index, 1) <= 0) Atomics.add(cells, index, 1)
}

/** FNV-1a over the UTF-16 code units: the high 32 bits of the key's hash. */
function hashHigh(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  return h | 0
}

/** A multiply-rotate hash (murmur3's mixing) with another seed: the low 32 bits, independent of the high. */
function hashLow(key: string): number {
  let h = 0x9747b28c
  for (let i = 0; i < key.length; i++) {
    let k = Math.imul(key.charCodeAt(i), 0xcc9e2d51)
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593)
    h ^= k
    h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64
  }
  h ^= key.length
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) | 0
}
