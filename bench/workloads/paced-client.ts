// An open-loop HTTP/1.1 client: sends at a fixed rate over a keep-alive pool and records latency in microseconds.
//
// autocannon's `overallRate` sends each connection's quota for a second in a burst at the start of the
// second and keeps latencies at 1 ms resolution; at loopback latencies (tens of µs) neither fits, so
// this client spreads requests evenly and keeps an HDR histogram in µs. The loop is open: requests go
// out on schedule whether or not earlier ones have answered, and latency runs from the moment a request
// is handed to the pool (so time spent queued for a connection behind a stalled proxy counts), but not
// from its due time, because Node timers fire up to 1 ms late and that jitter would swamp the proxy's.

import { build } from 'hdr-histogram-js'
import { Pool } from 'undici'
import type { Target } from '../systems/system.ts'

export interface PacedResult {
  readonly sent: number
  readonly completed: number
  readonly errors: number
  readonly non2xx: number
  readonly seconds: number
  readonly p50us: number
  readonly p90us: number
  readonly p99us: number
  readonly p999us: number
  readonly maxus: number
}

export interface PacedOptions {
  readonly path: string
  readonly rate: number
  readonly seconds: number
  /** Keep-alive connections the client may open (enough that requests never wait for one). */
  readonly connections: number
}

export async function runPaced(target: Target, opts: PacedOptions): Promise<PacedResult> {
  const pool = new Pool(`http://127.0.0.1:${target.port}`, {
    connections: opts.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
  })
  const histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  })
  const headers: Record<string, string> = target.host === undefined ? {} : { host: target.host }
  const interval = 1000 / opts.rate
  const total = Math.round(opts.rate * opts.seconds)
  let sent = 0
  let completed = 0
  let errors = 0
  let non2xx = 0
  const inflight = new Set<Promise<void>>()

  const send = async (): Promise<void> => {
    const begun = performance.now()
    try {
      const res = await pool.request({ path: opts.path, method: 'GET', headers })
      await res.body.dump({ limit: Number.MAX_SAFE_INTEGER })
      histogram.recordValue(Math.max(1, Math.round((performance.now() - begun) * 1000)))
      if (res.statusCode >= 200 && res.statusCode < 300) completed++
      else non2xx++
    } catch {
      errors++
    }
  }

  const start = performance.now()
  await new Promise<void>((done) => {
    const tick = (): void => {
      const now = performance.now()
      while (sent < total && start + sent * interval <= now) {
        const p = send()
        inflight.add(p)
        void p.finally(() => inflight.delete(p))
        sent++
      }
      if (sent >= total) done()
      else setTimeout(tick, Math.max(0, start + sent * interval - performance.now()))
    }
    tick()
  })
  await Promise.all(inflight)
  const seconds = (performance.now() - start) / 1000
  await pool.close()
  const result: PacedResult = {
    sent,
    completed,
    errors,
    non2xx,
    seconds,
    p50us: histogram.getValueAtPercentile(50),
    p90us: histogram.getValueAtPercentile(90),
    p99us: histogram.getValueAtPercentile(99),
    p999us: histogram.getValueAtPercentile(99.9),
    maxus: histogram.maxValue,
  }
  histogram.destroy()
  return result
}
