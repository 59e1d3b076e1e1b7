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

import type { OutlierDetectionModel } from '../config/model.ts'

/** Milliseconds from a monotonic clock; tests inject their own. */
export interface Clock {
  now(): number
}

/** A failure of the proxy's own making, before any response: Envoy's local-origin results. */
export type LocalOriginFailure = 'connectFailed' | 'timeout'

type EjectionType = '5xx' | 'gateway' | 'localOrigin'

/** Per-endpoint state (Envoy's DetectorHostMonitor). */
export class HostMonitor {
  consecutive5xx = 0
  consecutiveGateway = 0
  consecutiveLocalOrigin = 0
  ejected = false
  /** Times ejected, ever. */
  ejections = 0
  /** Envoy's eject_time_backoff: the multiplier of the base ejection time. */
  backoff = 0
  lastEjectionAt = 0
  readonly #detector: OutlierDetector

  constructor(detector: OutlierDetector) {
    this.#detector = detector
  }

  /** An upstream response status (Envoy's putHttpResponseCode). */
  putHttpStatus(status: number): void {
    const config = this.#detector.config
    const codes = config.httpErrorCodes
    const isError = codes.length === 0 ? status >= 500 && status <= 599 : codes.includes(status)
    if (config.splitExternalLocalOriginErrors) this.consecutiveLocalOrigin = 0
    if (!isError) {
      this.consecutive5xx = 0
      this.consecutiveGateway = 0
      return
    }
    if (status === 502 || status === 503 || status === 504) {
      if (++this.consecutiveGateway === config.consecutiveGatewayErrors)
        this.#detector.onConsecutive(this, 'gateway')
    } else {
      this.consecutiveGateway = 0
    }
    if (++this.consecutive5xx === config.consecutive5xxErrors) this.#detector.onConsecutive(this, '5xx')
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
    if (++this.consecutiveLocalOrigin === config.consecutiveLocalOriginFailures) {
      this.#detector.onConsecutive(this, 'localOrigin')
    }
  }
}

/** A cluster's detector: its endpoints' monitors, the ejection rules and the periodic sweep. */
export class OutlierDetector {
  config: OutlierDetectionModel
  #monitors: HostMonitor[] = []
  #ejected = 0
  readonly #clock: Clock
  readonly #onChange: () => void
  #timer: NodeJS.Timeout | undefined
  #timerInterval = 0
  /** Envoy's ejections_enforced_total and ejections_overflow. */
  ejectionsTotal = 0
  ejectionsOverflow = 0

  /** `onChange` runs after any ejection or unejection. */
  constructor(config: OutlierDetectionModel, onChange: () => void, clock: Clock = performance) {
    this.config = config
    this.#onChange = onChange
    this.#clock = clock
  }

  /** The endpoints' monitors after a config change; monitors keep their state across reloads. */
  setMonitors(monitors: HostMonitor[]): void {
    this.#monitors = monitors
    this.#ejected = monitors.reduce((n, m) => n + (m.ejected ? 1 : 0), 0)
  }

  get ejectedCount(): number {
    return this.#ejected
  }

  onConsecutive(monitor: HostMonitor, type: EjectionType): void {
    // An ejected host may still take traffic (panic mode); its counters then run on until unejected.
    if (monitor.ejected) return
    this.#eject(monitor)
    if (type === '5xx') monitor.consecutive5xx = 0
    else if (type === 'gateway') monitor.consecutiveGateway = 0
    else monitor.consecutiveLocalOrigin = 0
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
    if ((100 * (this.#ejected + 1)) / this.#monitors.length > Math.min(100, config.maxEjectionPercent)) {
      this.ejectionsOverflow++
      return
    }
    this.#ejected++
    this.ejectionsTotal++
    monitor.ejected = true
    monitor.ejections++
    monitor.lastEjectionAt = this.#clock.now()
    if (monitor.backoff * config.baseEjectionTimeMs < config.maxEjectionTimeMs + config.baseEjectionTimeMs) {
      monitor.backoff++
    }
    this.#onChange()
  }

  /**
   * The periodic sweep: an ejected host returns after min(base × backoff, max) and its 5xx and
   * gateway counters restart; a host that stayed healthy through an interval lowers its backoff.
   */
  sweep(): void {
    const config = this.config
    const now = this.#clock.now()
    let changed = false
    for (const m of this.#monitors) {
      if (!m.ejected) {
        if (m.backoff > 0) m.backoff--
        continue
      }
      const duration = Math.min(config.baseEjectionTimeMs * m.backoff, config.maxEjectionTimeMs)
      if (now - m.lastEjectionAt >= duration) {
        m.ejected = false
        m.consecutive5xx = 0
        m.consecutiveGateway = 0
        this.#ejected--
        changed = true
      }
    }
    if (changed) this.#onChange()
  }

  readonly #tick = (): void => this.sweep()

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
