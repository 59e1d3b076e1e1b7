// Outlier detection as Envoy implements it for Istio: consecutive-error counters per endpoint, timed ejections.
//
// Why plain counters and not opossum (DESIGN names it for per-endpoint tripping): Envoy's model is
// (1) consecutive errors (5xx, gateway 502/503/504, local-origin) counted per host, ejecting the
// moment a count reaches its threshold; (2) ejection for base × n (n grows with each ejection,
// shrinks after healthy sweeps, capped at max_ejection_time), lifted by a periodic sweep with no
// probe request; (3) cluster-wide rules: no ejection past maxEjectionPercent, and below
// minHealthPercent healthy the load balancer ignores ejections. opossum models something else:
// an error *percentage* over a rolling window, a half-open state letting one trial call through,
// a fixed resetTimeout, and no notion of sibling hosts. Its call shape is `breaker.fire(fn)` →
// Promise per request, while the data path is an undici handler object with no promise. Measured
// (bench/micro/outlier-vs-opossum.ts, Node 24.21): opossum fire() costs ~0.9 µs on success and
// 6-9 µs on failure with the timeout and rolling percentiles off (1-2 µs on success with its 10 s
// timeout timer), and with its defaults a failure re-sorts the window's latencies: ~10 ms each
// after 20k requests in the window. These counters cost 3-7 ns per outcome. So: counters here,
// and opossum stays off the request path.

//
// With several worker threads the counters and ejection state live in the proxy's SharedCounters, as
// Envoy's detector is one per cluster for all its workers (source/extensions/outlier_detection_monitors
// and source/common/upstream/outlier_detection_impl.cc run on the main thread): the worker whose error
// brings a count to its threshold ejects, a compareExchange on the host's `ejected` cell decides who
// ejects or brings it back, and every worker's load balancer sees the change through the cluster's
// generation cell. Times are SharedCounters.now() readings (one clock for every thread).

import type { OutlierDetectionModel } from '../config/model.ts'
import { type CounterBlock, elapsedMs, privateBlock } from '../shared/shared-counters.ts'

/** Milliseconds from a monotonic clock shared by every worker (SharedCounters); tests inject their own. */
export interface Clock {
  now(): number
}

/** A failure of the proxy's own making, before any response: Envoy's local-origin results. */
export type LocalOriginFailure = 'connectFailed' | 'timeout'

type EjectionType = '5xx' | 'gateway' | 'localOrigin'

/** Cells of a host's outlier state in its endpoint's counter block. */
const consecutive5xxCell = 0
const consecutiveGatewayCell = 1
const consecutiveLocalOriginCell = 2
const ejectedCell = 3
const ejectionsCell = 4
const backoffCell = 5
const lastEjectionAtCell = 6

/** Cells of a cluster's detector block. */
const ejectedCountCell = 0
const ejectionsTotalCell = 1
const ejectionsOverflowCell = 2
/** Bumped on every ejection and unejection, so each worker refreshes its load balancer's health. */
const generationCell = 3
const lastSweepAtCell = 4

/** Per-endpoint state (Envoy's DetectorHostMonitor), in cells every worker shares. */
export class HostMonitor {
  readonly #detector: OutlierDetector
  readonly #cells: Int32Array
  readonly #base: number

  /** `block`: where the host's state lives (its endpoint's counters from `outlierCells`). */
  constructor(detector: OutlierDetector, block: CounterBlock = privateBlock()) {
    this.#detector = detector
    this.#cells = block.cells
    this.#base = block.base
  }

  get consecutive5xx(): number {
    return this.#cells[this.#base + consecutive5xxCell]
  }

  get consecutiveGateway(): number {
    return this.#cells[this.#base + consecutiveGatewayCell]
  }

  get consecutiveLocalOrigin(): number {
    return this.#cells[this.#base + consecutiveLocalOriginCell]
  }

  get ejected(): boolean {
    return this.#cells[this.#base + ejectedCell] === 1
  }

  /** Times ejected, ever. */
  get ejections(): number {
    return this.#cells[this.#base + ejectionsCell]
  }

  /** Envoy's eject_time_backoff: the multiplier of the base ejection time. */
  get backoff(): number {
    return this.#cells[this.#base + backoffCell]
  }

  get lastEjectionAt(): number {
    return this.#cells[this.#base + lastEjectionAtCell]
  }

  /** Adds one to a consecutive-error count and answers the new count. */
  #count(cell: number): number {
    return Atomics.add(this.#cells, this.#base + cell, 1) + 1
  }

  #reset(cell: number): void {
    if (this.#cells[this.#base + cell] !== 0) Atomics.store(this.#cells, this.#base + cell, 0)
  }

  /** Claims the ejection (only one worker wins it); false when the host is ejected already. */
  tryMarkEjected(now: number): boolean {
    const cells = this.#cells
    const base = this.#base
    if (Atomics.compareExchange(cells, base + ejectedCell, 0, 1) !== 0) return false
    Atomics.add(cells, base + ejectionsCell, 1)
    Atomics.store(cells, base + lastEjectionAtCell, now)
    return true
  }

  /** Gives an ejection back (maxEjectionPercent refused it). */
  unmarkEjected(): void {
    Atomics.store(this.#cells, this.#base + ejectedCell, 0)
    Atomics.sub(this.#cells, this.#base + ejectionsCell, 1)
  }

  /** Claims the unejection (only one worker wins it) and restarts the 5xx and gateway counts. */
  tryUneject(): boolean {
    const cells = this.#cells
    const base = this.#base
    if (Atomics.compareExchange(cells, base + ejectedCell, 1, 0) !== 1) return false
    Atomics.store(cells, base + consecutive5xxCell, 0)
    Atomics.store(cells, base + consecutiveGatewayCell, 0)
    return true
  }

  /** Raises the backoff multiplier while it is below `limit`. */
  raiseBackoff(limit: number): void {
    const cells = this.#cells
    const at = this.#base + backoffCell
    if (cells[at] < limit) Atomics.add(cells, at, 1)
  }

  /** A sweep found the host healthy: its backoff shrinks by one. */
  lowerBackoff(): void {
    const cells = this.#cells
    const at = this.#base + backoffCell
    if (cells[at] > 0) Atomics.sub(cells, at, 1)
  }

  resetCount(type: EjectionType): void {
    this.#reset(
      type === '5xx'
        ? consecutive5xxCell
        : type === 'gateway'
          ? consecutiveGatewayCell
          : consecutiveLocalOriginCell,
    )
  }

  /** An upstream response status (Envoy's putHttpResponseCode). */
  putHttpStatus(status: number): void {
    const config = this.#detector.config
    const codes = config.httpErrorCodes
    const isError = codes.length === 0 ? status >= 500 && status <= 599 : codes.includes(status)
    if (config.splitExternalLocalOriginErrors) this.#reset(consecutiveLocalOriginCell)
    if (!isError) {
      this.#reset(consecutive5xxCell)
      this.#reset(consecutiveGatewayCell)
      return
    }
    if (status === 502 || status === 503 || status === 504) {
      if (this.#count(consecutiveGatewayCell) === config.consecutiveGatewayErrors)
        this.#detector.onConsecutive(this, 'gateway')
    } else {
      this.#reset(consecutiveGatewayCell)
    }
    if (this.#count(consecutive5xxCell) === config.consecutive5xxErrors)
      this.#detector.onConsecutive(this, '5xx')
  }

  /**
   * No response: connect failure, reset, or timeout. Unsplit, Envoy counts these as a 503 (504 for a
   * timeout); split, they count only toward consecutiveLocalOriginFailures.
   */
  putLocalOriginFailure(failure: LocalOriginFailure): void {
    const config = this.#detector.config
    if (!config.splitExternalLocalOriginErrors) {
      this.putHttpStatus(failure === 'timeout' ? 504 : 503)
      return
    }
    if (this.#count(consecutiveLocalOriginCell) === config.consecutiveLocalOriginFailures) {
      this.#detector.onConsecutive(this, 'localOrigin')
    }
  }
}

/** A cluster's detector: its endpoints' monitors, the ejection rules and the periodic sweep. */
/** A cluster's ejection counts from its detector block, for readers (Envoy's outlier_detection.* stats). */
export function readOutlierCounts(block: CounterBlock): {
  ejectionsActive: number
  ejectionsEnforcedTotal: number
  ejectionsOverflow: number
} {
  return {
    ejectionsActive: Atomics.load(block.cells, block.base + ejectedCountCell),
    ejectionsEnforcedTotal: Atomics.load(block.cells, block.base + ejectionsTotalCell),
    ejectionsOverflow: Atomics.load(block.cells, block.base + ejectionsOverflowCell),
  }
}

export class OutlierDetector {
  config: OutlierDetectionModel
  #monitors: HostMonitor[] = []
  readonly #clock: Clock
  readonly #onChange: () => void
  readonly #cells: Int32Array
  readonly #base: number
  #timer: NodeJS.Timeout | undefined
  #timerInterval = 0

  /**
   * `onChange` runs after any ejection or unejection this worker makes; `block` holds the cluster-wide
   * counts (the cluster's detector block in SharedCounters) and `clock` is the clock all workers share.
   */
  constructor(
    config: OutlierDetectionModel,
    onChange: () => void,
    clock: Clock = performance,
    block: CounterBlock = privateBlock(),
  ) {
    this.config = config
    this.#onChange = onChange
    this.#clock = clock
    this.#cells = block.cells
    this.#base = block.base
  }

  /** The endpoints' monitors after a config change; monitors keep their state across reloads. */
  setMonitors(monitors: HostMonitor[]): void {
    this.#monitors = monitors
    const ejected = monitors.reduce((n, m) => n + (m.ejected ? 1 : 0), 0)
    Atomics.store(this.#cells, this.#base + ejectedCountCell, ejected)
  }

  get ejectedCount(): number {
    return this.#cells[this.#base + ejectedCountCell]
  }

  /** Envoy's ejections_enforced_total and ejections_overflow, over every worker. */
  get ejectionsTotal(): number {
    return this.#cells[this.#base + ejectionsTotalCell]
  }

  get ejectionsOverflow(): number {
    return this.#cells[this.#base + ejectionsOverflowCell]
  }

  /** Changes on every ejection and unejection by any worker: a load balancer compares it to refresh. */
  get generation(): number {
    return this.#cells[this.#base + generationCell]
  }

  onConsecutive(monitor: HostMonitor, type: EjectionType): void {
    // An ejected host may still take traffic (panic mode); its counters then run on until unejected.
    if (monitor.ejected) return
    this.#eject(monitor)
    monitor.resetCount(type)
  }

  /**
   * Envoy ejects only when the share ejected *after* this ejection stays within maxEjectionPercent
   * (envoy#27909, source/common/upstream/outlier_detection_impl.cc DetectorImpl::ejectHost:
   * `100 * (active + 1) / hosts <= max_ejection_percent`). Its `always_eject_one_host` opt-in, which
   * lets one host go regardless, is never set by Istio (pilot applyOutlierDetection), so at Istio's
   * 10% default a cluster of fewer than 10 endpoints ejects none; the refusal counts as an overflow.
   */
  #eject(monitor: HostMonitor): void {
    const config = this.config
    const cells = this.#cells
    const base = this.#base
    if (!monitor.tryMarkEjected(this.#clock.now() | 0)) return
    // Take a place under maxEjectionPercent by compareExchange: workers ejecting at once never overshoot.
    let ejected = Atomics.load(cells, base + ejectedCountCell)
    for (;;) {
      if ((100 * (ejected + 1)) / this.#monitors.length > Math.min(100, config.maxEjectionPercent)) {
        monitor.unmarkEjected()
        Atomics.add(cells, base + ejectionsOverflowCell, 1)
        return
      }
      const seen = Atomics.compareExchange(cells, base + ejectedCountCell, ejected, ejected + 1)
      if (seen === ejected) break
      ejected = seen
    }
    Atomics.add(cells, base + ejectionsTotalCell, 1)
    monitor.raiseBackoff(Math.ceil(config.maxEjectionTimeMs / config.baseEjectionTimeMs + 1))
    Atomics.add(cells, base + generationCell, 1)
    this.#onChange()
  }

  /**
   * The periodic sweep: an ejected host returns after min(base × backoff, max) and its 5xx and
   * gateway counters restart; a host that stayed healthy through an interval lowers its backoff.
   */
  sweep(): void {
    const config = this.config
    const now = this.#clock.now() | 0
    const cells = this.#cells
    const base = this.#base
    let changed = false
    for (const m of this.#monitors) {
      if (!m.ejected) {
        m.lowerBackoff()
        continue
      }
      const duration = Math.min(config.baseEjectionTimeMs * m.backoff, config.maxEjectionTimeMs)
      if (elapsedMs(now, m.lastEjectionAt) >= duration && m.tryUneject()) {
        Atomics.sub(cells, base + ejectedCountCell, 1)
        changed = true
      }
    }
    if (changed) {
      Atomics.add(cells, base + generationCell, 1)
      this.#onChange()
    }
  }

  /**
   * Every worker's timer ticks; one sweep per interval runs, by whichever worker wins the compareExchange
   * on the last sweep's time (half an interval allows for the timers' drift).
   */
  readonly #tick = (): void => {
    const now = this.#clock.now() | 0
    const at = this.#base + lastSweepAtCell
    const last = Atomics.load(this.#cells, at)
    if (last !== 0 && elapsedMs(now, last) < this.config.intervalMs / 2) return
    if (Atomics.compareExchange(this.#cells, at, last, now) === last) this.sweep()
  }

  /** Runs the sweep every `interval` (restarting the timer when the interval changed). */
  start(): void {
    if (this.#timer !== undefined && this.#timerInterval === this.config.intervalMs) return
    this.stop()
    this.#timerInterval = this.config.intervalMs
    this.#timer = setInterval(this.#tick, this.config.intervalMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}
