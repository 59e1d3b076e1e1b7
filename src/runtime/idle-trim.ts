// Gives the C allocator's free memory back to the kernel once the proxy falls idle after load (glibc's malloc_trim).

import { type EventLoopUtilization, performance } from 'node:perf_hooks'
import { log } from '../telemetry/log.ts'
import { loadMallocTrim, type MallocTrim } from './malloc-trim.ts'
import { collectAllAvailableGarbage } from './memory-reducing-collection.ts'

const MiB = 1024 * 1024

export interface IdleTrimOptions {
  /** How often the event loop's utilization and the RSS are read. */
  readonly intervalMs?: number
  /** An interval whose event loop was busy less than this share of the time is idle. */
  readonly idleUtilization?: number
  /**
   * A trim is worth a call only when, since the last one (or since start), the RSS grew by this much or
   * the memory of ArrayBuffers (every Buffer's, outside the V8 heap) shrank by this much: what a burst
   * left in the allocator, and what a collection long after it handed back.
   */
  readonly growthBytes?: number
  /**
   * While the event loop is busy, a trim after such growth is made too, at most once per this many ms: under
   * steady load the loop is never idle, and the arenas keep what V8's compiler and GC threads freed (18 of
   * their 20 MiB at 1000 req/s, bench/results/rss-under-load-2026-12-07.md).
   */
  readonly busyIntervalMs?: number
  /**
   * While busy, the growth since the last trim that calls for one (smaller than `growthBytes`: at a steady rate
   * what grows between trims is mostly V8's worker threads' freed memory in their own arenas). 3 MiB: a minute
   * at 1000 req/s ended at 87 against 91 MiB with 6 (bench/results/rate-rss-2026-12-07.md).
   */
  readonly busyGrowthBytes?: number
  /**
   * A count that moves with every config compile (the proxy's reloads). Once it has moved, the next idle
   * interval makes a memory-reducing collection even without growth, and no trim unless growth calls for one:
   * what a compile leaves is garbage in V8's heap and a grown young generation, not free memory in the arenas.
   */
  readonly compiles?: () => number
}

/** malloc_trim, loaded on first use (koffi's RSS is paid only once a trim is due); undefined where it cannot be. */
function loadTrim(): MallocTrim | undefined {
  try {
    return loadMallocTrim()
  } catch (err) {
    log.info(`malloc_trim is not available (not glibc?): ${(err as Error).message}`)
    return undefined
  }
}

/**
 * Node frees a request's buffers with free(), and glibc keeps the freed memory in its arenas for the
 * next malloc instead of giving it back: after a burst the RSS stays where the burst left it
 * (bench/results/idle-memory-2026-12-04.md). malloc_trim(0) returns every free page of every arena.
 * It takes the arenas' locks and the next burst pays page faults again, so it is called when the
 * event loop has been idle for a whole interval and the RSS has grown (or off-heap memory has been
 * freed) since the last trim: about once per burst, never per request; and under load, after a smaller
 * growth (`busyGrowthBytes`), at most once per busy interval (10 s). The timer is unref'd and reads the
 * event loop's utilization and the RSS every interval.
 */
export class IdleTrim {
  readonly #idleUtilization: number
  readonly #growthBytes: number
  readonly #busyIntervalMs: number
  readonly #busyGrowthBytes: number
  readonly #timer: NodeJS.Timeout
  #last: EventLoopUtilization = performance.eventLoopUtilization()
  #rssAfterTrim = process.memoryUsage.rss()
  /** The RSS after the last trim made when idle (or at start): a busy trim does not move it. */
  #rssAfterIdleTrim = this.#rssAfterTrim
  #arrayBuffersAfterTrim = process.memoryUsage().arrayBuffers
  #trimmedAt = performance.now()
  #trim: MallocTrim | undefined | null = null
  #collecting = false
  #closed = false
  readonly #compiles: (() => number) | undefined
  #compilesCollected: number | undefined
  /** Trims made, and the bytes of RSS they gave back (RSS before minus after). */
  trims = 0
  releasedBytes = 0
  /** Memory-reducing collections made (before an idle trim, or after a compile). */
  collections = 0

  constructor(opts: IdleTrimOptions = {}) {
    this.#idleUtilization = opts.idleUtilization ?? 0.02
    this.#growthBytes = opts.growthBytes ?? 16 * MiB
    this.#busyIntervalMs = opts.busyIntervalMs ?? 10_000
    this.#busyGrowthBytes = opts.busyGrowthBytes ?? 3 * MiB
    this.#compiles = opts.compiles
    this.#compilesCollected = opts.compiles?.()
    this.#timer = setInterval(() => this.#tick(), opts.intervalMs ?? 5_000)
    this.#timer.unref()
  }

  #tick(): void {
    const now = performance.eventLoopUtilization()
    const utilization = performance.eventLoopUtilization(now, this.#last).utilization
    this.#last = now
    if (this.#collecting) return
    if (utilization >= this.#idleUtilization) {
      // Busy: no collection (V8 makes its own), only the allocator's free pages, and not often.
      if (
        performance.now() - this.#trimmedAt >= this.#busyIntervalMs &&
        process.memoryUsage.rss() >= this.#rssAfterTrim + this.#busyGrowthBytes
      )
        this.trimNow()
      return
    }
    const { rss, arrayBuffers } = process.memoryUsage()
    // Against the last idle trim: a busy trim during a burst left the burst's buffers to a collection.
    if (
      rss < this.#rssAfterIdleTrim + this.#growthBytes &&
      arrayBuffers > this.#arrayBuffersAfterTrim - this.#growthBytes
    ) {
      // Off-heap memory that grew since the last trim is what a later collection may free.
      this.#arrayBuffersAfterTrim = Math.max(this.#arrayBuffersAfterTrim, arrayBuffers)
      if (this.#compiles !== undefined && this.#compiles() !== this.#compilesCollected) void this.#collect()
      return
    }
    void this.#collectThenTrim()
  }

  /** A memory-reducing collection: alone after a compile (see `compiles`), or before an idle trim. */
  async #collect(): Promise<void> {
    this.#collecting = true
    this.#compilesCollected = this.#compiles?.()
    try {
      if (await collectAllAvailableGarbage()) this.collections++
    } catch (err) {
      log.debug(`the memory-reducing collection failed: ${(err as Error).message}`)
    }
    this.#collecting = false
  }

  /**
   * A burst's buffers outlive it in the old generation, which V8 collects only when it grows again (or after
   * its memory reducer's 100 s watchdog): until then their malloc'd memory is live, and a trim leaves it. So a
   * full collection (incremental, in tasks between the event loop's turns) comes first, when node runs
   * with --expose-gc (src/cli/node-settings.ts gives it).
   */
  async #collectThenTrim(): Promise<void> {
    await this.#collect()
    if (this.#closed) return
    this.trimNow()
    this.#rssAfterIdleTrim = this.#rssAfterTrim
  }

  /** Trims at once; returns false when malloc_trim is not available. */
  trimNow(): boolean {
    if (this.#trim === null) this.#trim = loadTrim()
    if (this.#trim === undefined) {
      clearInterval(this.#timer)
      return false
    }
    const before = process.memoryUsage.rss()
    this.#trim()
    const after = process.memoryUsage()
    this.#rssAfterTrim = after.rss
    this.#arrayBuffersAfterTrim = after.arrayBuffers
    this.#trimmedAt = performance.now()
    this.trims++
    this.releasedBytes += Math.max(0, before - after.rss)
    log.debug(`malloc_trim: RSS ${(before / MiB).toFixed(0)} → ${(after.rss / MiB).toFixed(0)} MiB`)
    return true
  }

  /** When the last trim was made (performance.now()), or when this was constructed. */
  get trimmedAt(): number {
    return this.#trimmedAt
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
  }
}
