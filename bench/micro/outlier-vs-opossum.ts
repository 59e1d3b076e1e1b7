// Micro-benchmark: per-request cost of an opossum breaker call against outlier detection's plain counters.
//
// Run: node bench/micro/outlier-vs-opossum.ts   (prints ns per operation for each case)

import CircuitBreaker from 'opossum'
import type { OutlierDetectionModel } from '../../src/config/model.ts'
import { HostMonitor, OutlierDetector } from '../../src/upstream/outlier-detection.ts'

const N = 200_000

const config: OutlierDetectionModel = {
  // Thresholds out of reach, so every call measures counting, never an ejection.
  consecutive5xxErrors: 2 ** 31,
  consecutiveGatewayErrors: 2 ** 31,
  splitExternalLocalOriginErrors: false,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
  minHealthPercent: 0,
  httpErrorCodes: [],
}

async function measure(label: string, n: number, op: (i: number) => unknown): Promise<void> {
  for (let i = 0; i < Math.min(n, 2_000); i++) await op(i) // warm up
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await op(i)
  const ns = Number(process.hrtime.bigint() - start) / n
  console.log(`${label.padEnd(62)} ${ns.toFixed(1).padStart(9)} ns/op`)
}

function measureSync(label: string, n: number, op: (i: number) => void): void {
  for (let i = 0; i < n; i++) op(i) // warm up
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) op(i)
  const ns = Number(process.hrtime.bigint() - start) / n
  console.log(`${label.padEnd(62)} ${ns.toFixed(1).padStart(9)} ns/op`)
}

/** One error object for every failure, so the numbers are opossum's and not stack capture's. */
const upstreamError = new Error('5xx')

function breaker(options: ConstructorParameters<typeof CircuitBreaker>[1]) {
  const ok = new CircuitBreaker(
    (fail: boolean) => (fail ? Promise.reject(upstreamError) : Promise.resolve(1)),
    {
      // Never open, so every fire runs the action and its bookkeeping.
      errorThresholdPercentage: 100,
      volumeThreshold: Number.MAX_SAFE_INTEGER,
      ...options,
    },
  )
  return ok
}

const detector = new OutlierDetector(config, () => {})
const monitor = new HostMonitor(detector)
detector.setMonitors([monitor])

measureSync('counters: putHttpStatus(200)', N * 10, () => monitor.putHttpStatus(200))
measureSync('counters: putHttpStatus(503)', N * 10, () => monitor.putHttpStatus(503))
measureSync('counters: putLocalOriginFailure(connectFailed)', N * 10, () =>
  monitor.putLocalOriginFailure('connectFailed'),
)
await measure('baseline: await Promise.resolve() (any promise per request)', N, () => Promise.resolve())

const lean = breaker({ timeout: false, rollingPercentilesEnabled: false, enableSnapshots: false })
await measure('opossum fire, success (no timeout, percentiles off)', N, () => lean.fire(false))
await measure('opossum fire, failure (no timeout, percentiles off)', N, () => lean.fire(true).catch(() => {}))
lean.shutdown()

const withTimeout = breaker({ rollingPercentilesEnabled: false, enableSnapshots: false })
await measure('opossum fire, success (10 s timeout timer, percentiles off)', N, () => withTimeout.fire(false))
withTimeout.shutdown()

const defaults = breaker({})
await measure('opossum fire, success (defaults: timeout, percentiles on)', N / 10, () => defaults.fire(false))
// With rolling percentiles on, each failure sorts the window's latencies: its cost grows with the window.
await measure('opossum fire, failure (defaults: timeout, percentiles on)', 2_000, () =>
  defaults.fire(true).catch(() => {}),
)
defaults.shutdown()
