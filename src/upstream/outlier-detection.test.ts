// Unit tests for outlier detection's state machine, on an injected clock: counting, ejecting, sweeping back.

import { describe, expect, it } from 'vitest'
import type { OutlierDetectionModel } from '../config/model.ts'
import { HostMonitor, OutlierDetector } from './outlier-detection.ts'

const defaults: OutlierDetectionModel = {
  consecutive5xxErrors: 5,
  consecutiveGatewayErrors: 0,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 1000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 100,
  minHealthPercent: 0,
  httpErrorCodes: [],
}

function setup(over: Partial<OutlierDetectionModel> = {}, hosts = 2) {
  const clock = { t: 0, now: () => clock.t }
  let changes = 0
  const detector = new OutlierDetector({ ...defaults, ...over }, () => changes++, clock)
  const monitors = Array.from({ length: hosts }, () => new HostMonitor(detector))
  detector.setMonitors(monitors)
  return { clock, detector, monitors, changes: () => changes }
}

const statuses = (m: HostMonitor, ...codes: number[]) => {
  for (const c of codes) m.putHttpStatus(c)
}

describe('outlier detection', () => {
  it('ejects at the fifth consecutive 5xx; a success in between starts the count again', () => {
    const { monitors, changes } = setup()
    const [a] = monitors
    statuses(a, 500, 503, 500, 500, 200, 500, 500, 500, 500)
    expect(a.ejected).toBe(false)
    statuses(a, 502)
    expect(a.ejected).toBe(true)
    expect(changes()).toBe(1)
    expect(a.consecutive5xx).toBe(0)
  })

  it('consecutiveGatewayErrors counts only 502, 503 and 504; 0 disables a rule', () => {
    const { monitors } = setup({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2 })
    const [a, b] = monitors
    statuses(a, 500, 500, 500, 500, 500, 500, 502, 500, 503)
    expect(a.ejected).toBe(false)
    statuses(b, 504, 502)
    expect(b.ejected).toBe(true)
  })

  it('without the split, connect failures count as 503 and timeouts as 504', () => {
    const { monitors } = setup({ consecutive5xxErrors: 3, consecutiveGatewayErrors: 2 })
    const [a, b] = monitors
    a.putLocalOriginFailure('connectFailed')
    a.putHttpStatus(500)
    a.putLocalOriginFailure('connectFailed')
    expect(a.ejected).toBe(true) // three 5xx
    b.putLocalOriginFailure('timeout')
    b.putLocalOriginFailure('timeout')
    expect(b.ejected).toBe(true) // two gateway errors
  })

  it('with the split, local-origin failures have their own count, reset by any response', () => {
    const { monitors } = setup({
      splitExternalLocalOriginErrors: true,
      consecutiveLocalOriginFailures: 2,
      consecutive5xxErrors: 3,
    })
    const [a, b] = monitors
    a.putLocalOriginFailure('connectFailed')
    a.putHttpStatus(503)
    a.putLocalOriginFailure('connectFailed')
    a.putHttpStatus(503)
    expect(a.ejected).toBe(false)
    expect(a.consecutive5xx).toBe(2)
    a.putLocalOriginFailure('timeout')
    a.putLocalOriginFailure('connectFailed')
    expect(a.ejected).toBe(true)
    statuses(b, 500, 500, 500)
    expect(b.ejected).toBe(true)
  })

  it('outlierDetectionHttpErrorCodes redefines which statuses are errors', () => {
    const { monitors } = setup({ consecutive5xxErrors: 2, httpErrorCodes: [429, 503] })
    const [a, b] = monitors
    statuses(a, 500, 500, 500)
    expect(a.ejected).toBe(false)
    statuses(b, 429, 503)
    expect(b.ejected).toBe(true)
  })

  it('an ejection lasts base × backoff; the sweep returns the host and restarts its counters', () => {
    const { clock, detector, monitors, changes } = setup({ consecutive5xxErrors: 1 })
    const [a] = monitors
    a.putHttpStatus(500)
    expect(a.ejected).toBe(true)
    clock.t = 999
    detector.sweep()
    expect(a.ejected).toBe(true)
    clock.t = 1000
    detector.sweep()
    expect(a.ejected).toBe(false)
    expect(changes()).toBe(2)
    // Ejected again at once: the second ejection lasts twice as long.
    a.putHttpStatus(500)
    clock.t = 2999
    detector.sweep()
    expect(a.ejected).toBe(true)
    clock.t = 3000
    detector.sweep()
    expect(a.ejected).toBe(false)
    expect(a.backoff).toBe(2)
    // Each sweep the host stays healthy lowers the multiplier again.
    detector.sweep()
    detector.sweep()
    expect(a.backoff).toBe(0)
    expect(a.ejections).toBe(2)
  })

  it('caps an ejection at max_ejection_time', () => {
    const { clock, detector, monitors } = setup({
      consecutive5xxErrors: 1,
      baseEjectionTimeMs: 100_000,
      maxEjectionTimeMs: 300_000,
    })
    const [a] = monitors
    for (let i = 0; i < 6; i++) {
      a.putHttpStatus(500)
      clock.t += 300_000
      detector.sweep()
      expect(a.ejected).toBe(false)
    }
    expect(a.backoff).toBe(4)
  })

  // Envoy's DetectorImpl::ejectHost (envoy#27909): eject only when 100 × (ejected + 1) / hosts ≤ max.
  it('ejects only when the share ejected afterwards stays within maxEjectionPercent', () => {
    const { detector, monitors } = setup({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }, 4)
    for (const m of monitors) m.putHttpStatus(500)
    expect(monitors.map((m) => m.ejected)).toEqual([true, true, false, false])
    expect(detector.ejectedCount).toBe(2)
    expect(detector.ejectionsTotal).toBe(2)
    expect(detector.ejectionsOverflow).toBe(2)
    const third = setup({ consecutive5xxErrors: 1, maxEjectionPercent: 34 }, 3)
    for (const m of third.monitors) m.putHttpStatus(500)
    expect(third.detector.ejectedCount).toBe(1) // 2 of 3 would be 67%
  })

  it("at Istio's 10% default, fewer than 10 endpoints never eject; 10 eject one", () => {
    for (const hosts of [1, 2, 5, 9]) {
      const small = setup({ consecutive5xxErrors: 1, maxEjectionPercent: 10 }, hosts)
      for (const m of small.monitors) m.putHttpStatus(500)
      expect(small.detector.ejectedCount).toBe(0)
      expect(small.detector.ejectionsOverflow).toBe(hosts)
    }
    const ten = setup({ consecutive5xxErrors: 1, maxEjectionPercent: 10 }, 10)
    for (const m of ten.monitors) m.putHttpStatus(500)
    expect(ten.detector.ejectedCount).toBe(1)
    expect(ten.monitors[0].ejected).toBe(true)
  })

  it('a host refused by the cap counts again from zero and ejects once the share allows it', () => {
    const { clock, detector, monitors } = setup({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }, 2)
    const [a, b] = monitors
    a.putHttpStatus(500)
    b.putHttpStatus(500)
    expect([a.ejected, b.ejected]).toEqual([true, false])
    clock.t = 1000
    detector.sweep()
    expect(a.ejected).toBe(false)
    b.putHttpStatus(500)
    expect(b.ejected).toBe(true)
  })

  it('an ejected host that still gets traffic does not re-eject or reset', () => {
    const { monitors, changes } = setup({ consecutive5xxErrors: 2 })
    const [a] = monitors
    statuses(a, 500, 500)
    statuses(a, 500, 500, 500)
    expect(changes()).toBe(1)
    expect(a.consecutive5xx).toBe(3)
  })
})
