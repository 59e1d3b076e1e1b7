// One bounded heavy-hitters table of requests by (direction, method, authority, path): Space-Saving (Metwally, Agrawal, El Abbadi 2005) on an indexed min-heap.

import type { TrafficDirection } from '../telemetry/request-record.ts'
import type { HeavyHitter, HeavyHitterSummary } from './heavy-hitter-summary.ts'

/** Longest path (and authority) a table keeps; a longer one is cut, so a key's size is bounded too. */
export const MAX_KEY_CHARS = 256
/** Longest method kept (HTTP/2's :method is any token). */
const MAX_METHOD_CHARS = 32

/** One tracked key and what the table knows of its requests. Reused in place when evicted. */
class Entry {
  direction: TrafficDirection = 'inbound'
  method = ''
  authority = ''
  path = ''
  /** Space-Saving's count: an overestimate of the key's requests by at most `error`. */
  count = 0
  /** The count the key inherited when it took an evicted key's place. */
  error = 0
  /** Successes among the `count - error` requests seen since the key entered. */
  successes = 0
  bestMs = 0
  worstMs = 0
  lastMs = 0
  /** Wall-clock ms of the request `lastMs` is from. */
  lastAt = 0
  /** Position in the heap array. */
  heapIndex = 0
  /** The next entry with the same authority and path (another direction or method). */
  sibling: Entry | undefined = undefined
}

/**
 * Space-Saving with `capacity` counters: a key already tracked counts one more; a new key takes a free
 * counter, or when none is free replaces the key with the smallest count, inheriting that count as its
 * error. So every count overestimates by at most its error, and any key with more than N/capacity of
 * the N requests is in the table. The smallest count sits at the root of a min-heap (O(log capacity) a
 * request); keys are looked up authority → path → (direction, method) chain, so no key string is built.
 * Entries are allocated once and reused: after the first `capacity` keys a request allocates nothing.
 */
export class SpaceSavingTable {
  readonly capacity: number
  /** The Unix second (or any period number) this table counts; set by `reset`. */
  period = -1
  readonly #heap: Entry[] = []
  #size = 0
  readonly #index = new Map<string, Map<string, Entry>>()
  /** Requests counted since the last reset. */
  #total = 0

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new Error(`capacity must be ≥ 1, got ${capacity}`)
    this.capacity = capacity
  }

  /** Keys tracked (at most `capacity`). */
  get size(): number {
    return this.#size
  }

  /** Requests counted since the last reset. */
  get total(): number {
    return this.#total
  }

  /** Authorities and paths indexed: never more than the keys tracked (evicted keys leave no index behind). */
  get indexedPaths(): number {
    let n = 0
    for (const paths of this.#index.values()) n += paths.size
    return n
  }

  /** Empties the table for `period`; its entries stay allocated for reuse. */
  reset(period: number): void {
    this.period = period
    this.#size = 0
    this.#total = 0
    this.#index.clear()
  }

  /** Counts one request; `at` is its wall-clock end (ms), `latencyMs` its duration. */
  add(
    direction: TrafficDirection,
    method: string,
    authority: string,
    path: string,
    success: boolean,
    latencyMs: number,
    at: number,
  ): void {
    this.#total++
    if (authority.length > MAX_KEY_CHARS) authority = authority.slice(0, MAX_KEY_CHARS)
    if (path.length > MAX_KEY_CHARS) path = path.slice(0, MAX_KEY_CHARS)
    if (method.length > MAX_METHOD_CHARS) method = method.slice(0, MAX_METHOD_CHARS)
    let paths = this.#index.get(authority)
    let entry = paths?.get(path)
    while (entry !== undefined && (entry.method !== method || entry.direction !== direction))
      entry = entry.sibling
    if (entry !== undefined) {
      entry.count++
      this.#seen(entry, success, latencyMs, at)
      this.#siftDown(entry.heapIndex)
      return
    }
    if (this.#size < this.capacity) {
      entry = this.#size < this.#heap.length ? (this.#heap[this.#size] as Entry) : new Entry()
      this.#heap[this.#size] = entry
      entry.heapIndex = this.#size++
      entry.count = 1
      entry.error = 0
    } else {
      // Replace the key with the smallest count: the newcomer may have had that many before it was seen.
      entry = this.#heap[0] as Entry
      this.#unindex(entry)
      entry.error = entry.count
      entry.count++
    }
    entry.direction = direction
    entry.method = method
    entry.authority = authority
    entry.path = path
    entry.successes = 0
    entry.bestMs = latencyMs
    entry.worstMs = latencyMs
    this.#seen(entry, success, latencyMs, at)
    // Looked up again: the eviction may have dropped this authority's map.
    paths = this.#index.get(authority)
    if (paths === undefined) {
      paths = new Map()
      this.#index.set(authority, paths)
    }
    entry.sibling = paths.get(path)
    paths.set(path, entry)
    // A new counter (count 1) rises toward the root; an evicted root's grew by one and may sink.
    if (entry.count === 1) this.#siftUp(entry.heapIndex)
    else this.#siftDown(entry.heapIndex)
  }

  /** The table as plain data: its keys, and the most an untracked key may have had (the smallest count when full). */
  summary(): HeavyHitterSummary {
    const entries: HeavyHitter[] = []
    for (let i = 0; i < this.#size; i++) {
      const e = this.#heap[i] as Entry
      entries.push({
        direction: e.direction,
        method: e.method,
        authority: e.authority,
        path: e.path,
        count: e.count,
        countError: e.error,
        successes: e.successes,
        bestMs: e.bestMs,
        worstMs: e.worstMs,
        lastMs: e.lastMs,
        lastAt: e.lastAt,
      })
    }
    const untrackedAtMost = this.#size === this.capacity ? (this.#heap[0] as Entry).count : 0
    return { entries, untrackedAtMost }
  }

  #seen(entry: Entry, success: boolean, latencyMs: number, at: number): void {
    if (success) entry.successes++
    if (latencyMs < entry.bestMs) entry.bestMs = latencyMs
    if (latencyMs > entry.worstMs) entry.worstMs = latencyMs
    entry.lastMs = latencyMs
    entry.lastAt = at
  }

  /** Takes `entry` out of the authority → path → chain index, dropping maps it leaves empty. */
  #unindex(entry: Entry): void {
    const paths = this.#index.get(entry.authority) as Map<string, Entry>
    const head = paths.get(entry.path) as Entry
    if (head === entry) {
      if (entry.sibling === undefined) {
        paths.delete(entry.path)
        if (paths.size === 0) this.#index.delete(entry.authority)
      } else paths.set(entry.path, entry.sibling)
    } else {
      let before = head
      while (before.sibling !== entry) before = before.sibling as Entry
      before.sibling = entry.sibling
    }
    entry.sibling = undefined
  }

  /** Restores the heap above `i` after a counter with the smallest possible count joined at the end. */
  #siftUp(i: number): void {
    const heap = this.#heap
    const entry = heap[i] as Entry
    while (i > 0) {
      const parentIndex = (i - 1) >> 1
      const parent = heap[parentIndex] as Entry
      if (parent.count <= entry.count) break
      heap[i] = parent
      parent.heapIndex = i
      i = parentIndex
    }
    heap[i] = entry
    entry.heapIndex = i
  }

  /** Restores the heap below `i` after its count grew (counts only grow until reset). */
  #siftDown(i: number): void {
    const heap = this.#heap
    const size = this.#size
    const entry = heap[i] as Entry
    for (;;) {
      const left = 2 * i + 1
      if (left >= size) break
      const right = left + 1
      let child = left
      if (right < size && (heap[right] as Entry).count < (heap[left] as Entry).count) child = right
      const smaller = heap[child] as Entry
      if (smaller.count >= entry.count) break
      heap[i] = smaller
      smaller.heapIndex = i
      i = child
    }
    heap[i] = entry
    entry.heapIndex = i
  }
}
