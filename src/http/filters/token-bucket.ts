// A token bucket as Envoy's local rate limit keeps one: starts full, refills whole intervals lazily.
//
// Its tokens and last fill time live in a SharedCounters block, so the bucket is one for every worker
// thread, as Envoy's local rate limit bucket is one per filter config for all workers
// (source/extensions/filters/common/local_ratelimit: a shared TokenBucket updated atomically). Tokens are
// taken by compareExchange; the worker that moves the fill time on by compareExchange adds those
// intervals' tokens, so no interval is counted twice.

import { type CounterBlock, elapsedMs, privateBlock } from '../../shared/shared-counters.ts'

/** Cells of a bucket's block: set once the first worker filled it, the tokens, the last fill (shared clock ms). */
const initializedCell = 0
const tokensCell = 1
const lastFillCell = 2

/** Milliseconds on the clock every worker shares (SharedCounters.now()); tests inject their own. */
export interface BucketClock {
  now(): number
}

export class TokenBucket {
  readonly #maxTokens: number
  readonly #tokensPerFill: number
  readonly #fillIntervalMs: number
  readonly #clock: BucketClock
  readonly #cells: Int32Array
  readonly #base: number

  /** `block`: the bucket's shared cells (a worker finding them filled already leaves them as they are). */
  constructor(
    maxTokens: number,
    tokensPerFill: number,
    fillIntervalMs: number,
    clock: BucketClock = performance,
    block: CounterBlock = privateBlock(),
  ) {
    this.#maxTokens = maxTokens
    this.#tokensPerFill = tokensPerFill
    this.#fillIntervalMs = fillIntervalMs
    this.#clock = clock
    this.#cells = block.cells
    this.#base = block.base
    if (Atomics.compareExchange(this.#cells, this.#base + initializedCell, 0, 1) === 0) {
      Atomics.store(this.#cells, this.#base + tokensCell, maxTokens)
      Atomics.store(this.#cells, this.#base + lastFillCell, clock.now() | 0)
    }
  }

  /** Takes one token; false when the bucket is empty. */
  take(now = this.#clock.now()): boolean {
    const cells = this.#cells
    const tokensAt = this.#base + tokensCell
    this.#refill(now | 0)
    let tokens = Atomics.load(cells, tokensAt)
    while (tokens > 0) {
      const seen = Atomics.compareExchange(cells, tokensAt, tokens, tokens - 1)
      if (seen === tokens) return true
      tokens = seen
    }
    return false
  }

  /** Adds the tokens of the whole intervals since the last fill, up to the maximum. */
  #refill(now: number): void {
    const cells = this.#cells
    const lastAt = this.#base + lastFillCell
    const last = Atomics.load(cells, lastAt)
    const elapsed = elapsedMs(now, last)
    const interval = this.#fillIntervalMs
    if (elapsed < interval && elapsed >= 0) return
    // Negative: idle for longer than the Int32 clock's half range, so the bucket is full again.
    const intervals = elapsed < 0 ? this.#maxTokens : Math.floor(elapsed / interval)
    const next = elapsed < 0 ? now : (last + intervals * interval) | 0
    if (Atomics.compareExchange(cells, lastAt, last, next) !== last) return
    const tokensAt = this.#base + tokensCell
    const added = intervals * this.#tokensPerFill
    let tokens = Atomics.load(cells, tokensAt)
    for (;;) {
      const seen = Atomics.compareExchange(cells, tokensAt, tokens, Math.min(this.#maxTokens, tokens + added))
      if (seen === tokens) return
      tokens = seen
    }
  }
}
